package packager

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/manifest"
	"golang.org/x/text/language"
)

const (
	segmentTemplate = "seg_$Number%05d$.m4s"
	segmentPattern  = "seg_%05d.m4s"
	singleFileName  = "media.mp4"
	bodyTempName    = ".media.body" // single-file fragments before the sidx is known
)

// trackWriter turns one input track into CMAF: an init segment and then media segments,
// each made of one fragment (moof+mdat) per GOP so that every keyframe can be addressed by
// the I-frame playlist. Sample bytes go from the input file to the output file without
// passing through a buffer of ours (copy_file_range on Linux).
type trackWriter struct {
	src    *inputTrack
	track  *manifest.Track
	dir    string
	single bool

	seq  uint32   // moof sequence number
	body *os.File // single-file mode: fragments, appended
	pos  int64    // single-file mode: bytes written to body

	durCount map[uint32]int // sample durations seen, for the frame rate
	bytes    int64          // media bytes written (for progress)

	// enc, when set, encrypts every fragment (Common Encryption). Its samples then pass
	// through memory (one fragment, a GOP at most) instead of going file to file.
	enc      *trackEncryptor
	initData []byte       // the protected init segment, made with enc
	fragBuf  bytes.Buffer // enc: one fragment's samples, reused

	// aes, when set, encrypts every media segment file whole (HLS AES-128). A segment is then
	// built in segBuf and encrypted before it is written; the init segment stays clear.
	aes    *segmentCipher
	segBuf bytes.Buffer
}

// newTrackWriter makes the writer of the n-th track (0-based), encrypted when e is set.
func newTrackWriter(src *inputTrack, n int, id, dir string, single bool, e *Encryption) (*trackWriter, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	w := &trackWriter{
		src:      src,
		dir:      dir,
		single:   single,
		durCount: map[uint32]int{},
		track: &manifest.Track{
			ID:         id,
			Kind:       src.kind,
			Codecs:     src.codecs,
			Timescale:  src.timescale,
			Width:      src.width,
			Height:     src.height,
			SAR:        src.sar,
			SampleRate: src.sampleRate,
			Channels:   src.channels,
			Language:   src.language,
			InitURI:    manifest.InitSegmentName,
		},
	}
	if e != nil && e.Scheme == SchemeAES128 {
		// Package refuses single-file aes-128 before this: a byte range of media.mp4 would
		// have to be encrypted on its own, and the file would no longer be an MP4.
		var err error
		if w.aes, err = newSegmentCipher(e); err != nil {
			return nil, err
		}
	} else if e != nil {
		clear, err := w.initSegment()
		if err != nil {
			return nil, err
		}
		if w.enc, w.initData, err = newTrackEncryptor(e, n, clear); err != nil {
			return nil, err
		}
	}
	if single {
		w.track.InitURI = singleFileName
		f, err := os.Create(filepath.Join(dir, bodyTempName))
		if err != nil {
			return nil, err
		}
		w.body = f
	} else {
		w.track.SegmentTemplate = segmentTemplate
		w.track.StartNumber = 1
	}
	return w, nil
}

// initSegment encodes ftyp+moov for the track.
func (w *trackWriter) initSegment() ([]byte, error) { return encodeInit(w.src, w.track.Language) }

// encodeInit encodes ftyp+moov for src, with the input's own sample entry so that codec
// configuration (SPS/PPS, AudioSpecificConfig, pasp, colr…) is carried over untouched, and
// bcp47 as its language ("" for undetermined).
func encodeInit(src *inputTrack, bcp47 string) ([]byte, error) {
	init := mp4.CreateEmptyInit()
	// mdhd holds an ISO 639-2 code; elng (added by mp4ff for anything else) the full tag.
	lang := "und"
	if tag, err := language.Parse(bcp47); err == nil && bcp47 != "" {
		lang = bcp47
		if base, conf := tag.Base(); conf == language.Exact && base.String() == lang {
			lang = base.ISO3()
		}
	}
	trak := init.AddEmptyTrack(src.timescale, src.kind.String(), lang)
	trak.Mdia.Minf.Stbl.Stsd.AddChild(src.entry)
	addEdit(trak, src.edit)
	if src.kind == manifest.Video {
		trak.Tkhd.Width = mp4.Fixed32(src.width << 16)
		trak.Tkhd.Height = mp4.Fixed32(src.height << 16)
	}
	var buf bytes.Buffer
	if err := init.Encode(&buf); err != nil {
		return nil, fmt.Errorf("encoding init segment: %w", err)
	}
	return buf.Bytes(), nil
}

// addEdit gives trak the input's edit list entry (CMAF ISO/IEC 23000-19 §7.5.13): media time
// edit is presented at time zero. It drops AAC encoder priming (1024 samples at the start that
// a decoder needs but a listener must not hear) and B-frame delay, as the source file did;
// without it audio plays an audio frame late and lasts an audio frame longer than the source.
// The duration is 0, "the whole media" of a fragmented track whose length the init segment
// cannot know (ISO/IEC 14496-12 §8.6.6).
func addEdit(trak *mp4.TrakBox, edit int64) {
	if edit == 0 {
		return
	}
	edts := &mp4.EdtsBox{}
	edts.AddChild(&mp4.ElstBox{Entries: []mp4.ElstEntry{{MediaTime: edit, MediaRateInteger: 1}}})
	// edts goes between tkhd and mdia (ISO/IEC 14496-12 §8.6.5 box order).
	trak.Edts = edts
	children := []mp4.Box{}
	for _, c := range trak.Children {
		children = append(children, c)
		if _, ok := c.(*mp4.TkhdBox); ok {
			children = append(children, edts)
		}
	}
	trak.Children = children
}

// writeInit writes init.mp4 (segmented mode). Single-file mode writes it in finish.
func (w *trackWriter) writeInit() error {
	if w.single {
		return nil
	}
	data := w.initData
	if data == nil {
		var err error
		if data, err = w.initSegment(); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(w.dir, manifest.InitSegmentName), data, 0o644)
}

// writeSegment writes one media segment holding samples (decode order, starting with a sync
// sample for video).
func (w *trackWriter) writeSegment(samples []sample) error {
	if len(samples) == 0 {
		return nil
	}
	num := len(w.track.Segments) + 1
	if num == 1 {
		w.track.Priming = w.src.priming(samples[0])
	}
	var out io.Writer
	var file *os.File // segmented mode: the segment's file
	var start int64
	uri := singleFileName
	if w.single {
		out, start = w.body, w.pos
	} else {
		uri = fmt.Sprintf(segmentPattern, num)
		f, err := os.Create(filepath.Join(w.dir, uri))
		if err != nil {
			return err
		}
		defer f.Close()
		out, file = f, f
		if w.aes != nil {
			w.segBuf.Reset()
			out = &w.segBuf
		}
		var styp bytes.Buffer
		if err := mp4.CreateStyp().Encode(&styp); err != nil {
			return err
		}
		if _, err := out.Write(styp.Bytes()); err != nil {
			return err
		}
		start = 0
		w.pos = int64(styp.Len())
	}

	var dur uint64
	for _, chunk := range w.chunks(samples) {
		chunkStart := w.pos
		moofLen, err := w.writeFragment(out, chunk)
		if err != nil {
			return err
		}
		var cdur uint64
		for _, s := range chunk {
			cdur += uint64(s.dur)
			w.durCount[s.dur]++
		}
		// No I-frame playlist with aes-128: an I-frame's byte range inside a segment encrypted
		// whole cannot be decrypted on its own (RFC 8216 §4.3.2.4 encrypts each listed range).
		if w.src.kind == manifest.Video && chunk[0].sync && w.aes == nil {
			w.track.IFrames = append(w.track.IFrames, manifest.IFrame{
				Start:    chunk[0].dts,
				Duration: cdur,
				URI:      uri,
				// moof + mdat header + the keyframe itself (RFC 8216 §4.3.3.6)
				Range: manifest.ByteRange{Offset: chunkStart, Length: moofLen + int64(chunk[0].size)},
			})
		}
		dur += cdur
	}
	if w.aes != nil {
		// The media playlist has no EXT-X-MEDIA-SEQUENCE, so the first segment's number is 0
		// (RFC 8216 §4.3.3.2) and segment num's is num-1: the IV a player derives (§5.2).
		// Size, and so BANDWIDTH, is the encrypted size, padding included.
		w.segBuf.Grow(16) // room for the padding: encrypted in place, no copy
		enc := w.aes.encrypt(w.segBuf.Bytes(), uint64(num-1))
		if _, err := file.Write(enc); err != nil {
			return err
		}
		w.pos = start + int64(len(enc))
	}
	seg := manifest.Segment{Start: samples[0].dts, Duration: dur, URI: uri, Size: w.pos - start}
	if w.single {
		seg.Range = manifest.ByteRange{Offset: start, Length: w.pos - start}
	}
	w.track.Segments = append(w.track.Segments, seg)
	return nil
}

// chunks splits a segment into fragments: one per GOP for video, one for audio.
func (w *trackWriter) chunks(samples []sample) [][]sample {
	if w.src.kind != manifest.Video {
		return [][]sample{samples}
	}
	var out [][]sample
	from := 0
	for i := 1; i < len(samples); i++ {
		if samples[i].sync {
			out = append(out, samples[from:i])
			from = i
		}
	}
	return append(out, samples[from:])
}

// writeFragment writes moof + mdat for chunk and returns the length of moof plus mdat header.
func (w *trackWriter) writeFragment(out io.Writer, chunk []sample) (int64, error) {
	w.seq++
	if w.enc != nil {
		return w.writeEncryptedFragment(out, chunk)
	}
	hdr, err := fragmentHeader(w.seq, chunk[0].dts, chunk)
	if err != nil {
		return 0, err
	}
	if _, err := out.Write(hdr); err != nil {
		return 0, err
	}
	n, err := w.copySamples(out, chunk)
	if err != nil {
		return 0, err
	}
	w.pos += int64(len(hdr)) + n
	w.bytes += n
	return int64(len(hdr)), nil
}

// writeEncryptedFragment is writeFragment for an encrypted track: the chunk's samples are read
// into memory, encrypted and written with their moof (which then holds senc, saiz and saio).
func (w *trackWriter) writeEncryptedFragment(out io.Writer, chunk []sample) (int64, error) {
	var size int64
	for _, s := range chunk {
		size += int64(s.size)
	}
	w.fragBuf.Reset()
	w.fragBuf.Grow(int(size))
	if _, err := w.copySamples(&w.fragBuf, chunk); err != nil {
		return 0, err
	}
	hdrLen, total, err := w.enc.writeFragment(out, w.seq, chunk[0].dts, chunk, w.fragBuf.Bytes())
	if err != nil {
		return 0, err
	}
	w.pos += total
	w.bytes += size
	return hdrLen, nil
}

// copySamples copies the chunk's sample bytes from the input, one read per contiguous run.
// With an *os.File as out the bytes go file to file.
func (w *trackWriter) copySamples(out io.Writer, chunk []sample) (int64, error) {
	in := w.src.in
	var total int64
	for i := 0; i < len(chunk); {
		off, n := chunk[i].off, int64(chunk[i].size)
		j := i + 1
		for ; j < len(chunk) && chunk[j].off == off+n; j++ {
			n += int64(chunk[j].size)
		}
		if off+n > in.size {
			return total, fmt.Errorf("truncated: sample data at offset %d+%d lies past the end of the file", off, n)
		}
		// Seek + LimitedReader on the *os.File lets os.File.ReadFrom use copy_file_range.
		if _, err := in.f.Seek(off, io.SeekStart); err != nil {
			return total, err
		}
		c, err := io.Copy(out, &io.LimitedReader{R: in.f, N: n})
		total += c
		if err != nil {
			return total, err
		}
		if c != n {
			return total, fmt.Errorf("truncated: sample data at offset %d: read %d of %d bytes", off, c, n)
		}
		i = j
	}
	return total, nil
}

// finish completes the track: in single-file mode it writes ftyp+moov, the sidx and the
// fragments into media.mp4 and turns body offsets into file offsets. It then fills the
// measured fields of the manifest track.
func (w *trackWriter) finish() error {
	t := w.track
	if w.single {
		if err := w.writeSingleFile(); err != nil {
			return err
		}
	}
	t.FrameRate = w.frameRate()
	t.PeakBandwidth, t.AverageBandwidth = bandwidth(t.Timescale, len(t.Segments), func(i int) (int64, uint64) {
		return t.Segments[i].Size, t.Segments[i].Duration
	})
	if t.Kind == manifest.Video {
		t.IFramePeakBandwidth, t.IFrameAverageBandwidth = bandwidth(t.Timescale, len(t.IFrames), func(i int) (int64, uint64) {
			return t.IFrames[i].Range.Length, t.IFrames[i].Duration
		})
	}
	return nil
}

func (w *trackWriter) writeSingleFile() error {
	t := w.track
	init := w.initData // encrypted: the protected init segment (tenc, sinf)
	if init == nil {
		var err error
		if init, err = w.initSegment(); err != nil {
			return err
		}
	}
	sidx := &mp4.SidxBox{ReferenceID: 1, Timescale: t.Timescale}
	if len(t.Segments) > 0 {
		sidx.EarliestPresentationTime = t.Segments[0].Start
		if sidx.EarliestPresentationTime > 0xffffffff {
			sidx.Version = 1
		}
	}
	for _, s := range t.Segments {
		if s.Size > 0x7fffffff || s.Duration > 0xffffffff {
			return fmt.Errorf("segment too large for a sidx reference")
		}
		sidx.SidxRefs = append(sidx.SidxRefs, mp4.SidxRef{
			ReferencedSize: uint32(s.Size), SubSegmentDuration: uint32(s.Duration),
			StartsWithSAP: 1, SAPType: 1,
		})
	}
	var idx bytes.Buffer
	if err := sidx.Encode(&idx); err != nil {
		return fmt.Errorf("encoding sidx: %w", err)
	}
	f, err := os.Create(filepath.Join(w.dir, singleFileName))
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(append(init, idx.Bytes()...)); err != nil {
		return err
	}
	if _, err := w.body.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(f, w.body); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	w.body.Close()
	if err := os.Remove(w.body.Name()); err != nil {
		return err
	}
	base := int64(len(init) + idx.Len())
	t.InitRange = manifest.ByteRange{Offset: 0, Length: int64(len(init))}
	t.IndexRange = manifest.ByteRange{Offset: int64(len(init)), Length: int64(idx.Len())}
	for i := range t.Segments {
		t.Segments[i].Range.Offset += base
	}
	for i := range t.IFrames {
		t.IFrames[i].Range.Offset += base
	}
	return nil
}

// close releases the body file when packaging stops early.
func (w *trackWriter) close() {
	if w.body != nil {
		w.body.Close()
	}
}

// frameRate is the timescale over the most common sample duration.
func (w *trackWriter) frameRate() manifest.Rational {
	if w.src.kind != manifest.Video {
		return manifest.Rational{}
	}
	var best uint32
	for d, n := range w.durCount {
		if n > w.durCount[best] || (n == w.durCount[best] && d < best) {
			best = d
		}
	}
	if best == 0 {
		return manifest.Rational{}
	}
	return reduce(int(w.src.timescale), int(best))
}

// bandwidth returns the peak and average bit rates over n items (segments or I-frames),
// RFC 8216 §4.3.4.2: peak is the largest per-segment rate; average is total bits over total time.
func bandwidth(timescale uint32, n int, item func(int) (int64, uint64)) (peak, avg int) {
	var bytes int64
	var dur uint64
	for i := 0; i < n; i++ {
		b, d := item(i)
		bytes += b
		dur += d
		if d > 0 {
			r := float64(b*8) * float64(timescale) / float64(d)
			peak = max(peak, int(r+0.5))
		}
	}
	if dur > 0 {
		avg = int(float64(bytes*8)*float64(timescale)/float64(dur) + 0.5)
	}
	return peak, avg
}
