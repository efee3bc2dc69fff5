package live

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/cespare/xxhash/v2"
)

// A segment's ETag is its strong validator (RFC 9110 §8.8.3), and it must be known when the
// segment starts: it is the same while the segment streams in progress and once it is complete,
// so that a cache in front (reel edge) can store the growing segment while it passes and share
// that one origin response with every viewer asking meanwhile. It can't be a digest of the
// complete bytes, then; it is a digest of what determines them and is known from the first
// fragment on: the track's init segment, the segment number and the first fragment's bytes
// (its moof carries the baseMediaDecodeTime and the sample table, its mdat the media). Origins
// producing the same content at the same position — replicas looping one file, a restarted
// process reading its DVR folder back — give the same ETag; other content gives another one.
//
// What it does not see is where the segment ends: a segment cut short (the event ended, the
// source restarted) has the ETag that the same segment complete has elsewhere. The one-writer
// rule keeps a published segment from ever changing under its name.

// maxHeadBoxes bounds the walk to the first mdat: a CMAF fragment is moof+mdat, maybe after a
// styp or prft; more boxes than this before an mdat are not a fragment's.
const maxHeadBoxes = 16

// segmentETag returns s's ETag, computing it from the bytes in memory (its first part, or the
// whole segment) the first time; "" when they are only on disk (diskSegmentETag). c.mu is held.
func segmentETag(t *track, s *segment) string {
	if s.etag != "" {
		return s.etag
	}
	var head []byte
	switch {
	case len(s.parts) > 0 && s.parts[0].data != nil:
		head = s.parts[0].data
	case s.data != nil:
		head = s.data
	default:
		return ""
	}
	r := bytes.NewReader(head)
	if etag, err := fragmentETag(t.init, s.number, r, r.Size()); err == nil {
		s.etag = etag
	}
	return s.etag
}

// diskSegmentETag is segmentETag for a segment read back from the DVR folder (f, opened by
// the caller without c.mu), which gets the ETag it was served with before it left memory or
// before a restart. "" if f can't be read, and then the response carries no ETag.
func (c *Channel) diskSegmentETag(t *track, s *segment, f *os.File) string {
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	etag, err := fragmentETag(t.init, s.number, f, st.Size())
	if err != nil {
		c.cfg.Logger.Warn("live: segment ETag", "channel", c.cfg.Name, "track", t.info.ID, "segment", s.number, "err", err)
		return ""
	}
	c.mu.Lock()
	s.etag = etag
	c.mu.Unlock()
	return etag
}

// fragmentETag hashes init, the segment number and the segment's first fragment: its bytes up
// to the end of its first mdat box (all of them if there is no mdat).
func fragmentETag(init []byte, number uint64, seg io.ReaderAt, size int64) (string, error) {
	end, err := firstFragmentEnd(seg, size)
	if err != nil {
		return "", err
	}
	h := xxhash.New()
	h.Write(init)
	var num [8]byte
	binary.BigEndian.PutUint64(num[:], number)
	h.Write(num[:])
	if _, err := io.Copy(h, io.NewSectionReader(seg, 0, end)); err != nil {
		return "", fmt.Errorf("reading the first fragment: %w", err)
	}
	return fmt.Sprintf(`"%016x"`, h.Sum64()), nil
}

// firstFragmentEnd walks the box headers of a segment to the end of its first mdat.
func firstFragmentEnd(seg io.ReaderAt, size int64) (int64, error) {
	var hdr [16]byte
	pos := int64(0)
	for range maxHeadBoxes {
		if size-pos < 8 {
			break
		}
		if _, err := seg.ReadAt(hdr[:8], pos); err != nil {
			return 0, fmt.Errorf("reading a box header at %d: %w", pos, err)
		}
		boxSize := int64(binary.BigEndian.Uint32(hdr[:4]))
		switch boxSize {
		case 0: // to the end
			boxSize = size - pos
		case 1:
			if _, err := seg.ReadAt(hdr[8:16], pos+8); err != nil {
				return 0, fmt.Errorf("reading a box header at %d: %w", pos, err)
			}
			boxSize = int64(binary.BigEndian.Uint64(hdr[8:16]))
		}
		if boxSize < 8 || boxSize > size-pos {
			break // not a box: the fragment is all there is
		}
		pos += boxSize
		if string(hdr[4:8]) == "mdat" {
			return pos, nil
		}
	}
	return size, nil
}
