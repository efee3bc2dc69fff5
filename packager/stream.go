package packager

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/Eyevinn/mp4ff/bits"
	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/live"
	"github.com/reelvideo/reel/packager/subtitles"
)

// Limits on boxes read from a stream: a corrupt or hostile size field must not make the
// packager allocate gigabytes. A fragment of a few seconds of 4K video stays well below.
const (
	maxStreamMoov     = 16 << 20
	maxStreamFragment = 256 << 20
)

// StreamOptions configure ReadStream.
type StreamOptions struct {
	// Name labels errors and logs (e.g. "stdin").
	Name   string
	Logger *slog.Logger
}

// ReadStream reads a fragmented MP4 stream (ftyp, moov, then moof+mdat pairs, as ffmpeg writes
// with -movflags frag_keyframe+empty_moov+default_base_moof, or cmaf/frag_every_frame) and feeds
// it to ch as a live ladder: each video and audio track of the moov becomes a rendition with its
// own CMAF init segment, and each fragment is split per track into CMAF chunks. It returns nil at
// the end of the stream (the event then ends) and an error naming the stream and the problem on
// malformed input; fragments already appended stay published.
func ReadStream(ctx context.Context, r io.Reader, ch *live.Channel, opt StreamOptions) error {
	if opt.Name == "" {
		opt.Name = "stream"
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s := newStreamReader(ch, opt.Name, opt.Logger, newIDs())
	if err := s.feed(ctx, r); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	if s.tracks == nil {
		return s.fail(errors.New("ended before a moov box"))
	}
	ch.End()
	return nil
}

func newStreamReader(ch *live.Channel, name string, log *slog.Logger, ids ids) *streamReader {
	return &streamReader{ch: ch, name: name, log: log, ids: ids}
}

// feed reads boxes from r until its end, carrying the reader's state (tracks, the pending moof)
// over from earlier bodies: an HTTP ingest sends one track's init and segments as separate
// requests.
func (s *streamReader) feed(ctx context.Context, r io.Reader) error {
	s.r = bufio.NewReaderSize(r, 64<<10)
	s.refused = nil
	for {
		if ctx.Err() != nil {
			return nil
		}
		box, err := s.next()
		if err == io.EOF {
			if s.refused != nil && s.reinit {
				// An ingest request answers for its own track: the sender learns of it.
				return s.fail(s.refused)
			}
			return nil
		}
		if err != nil {
			return s.fail(err)
		}
		if err := s.handle(box); err != nil {
			return s.fail(err)
		}
	}
}

// streamTrack is one track of the stream mapped to a channel rendition.
type streamTrack struct {
	src    *inputTrack
	id     string
	trex   *mp4.TrexBox
	seq    uint32
	reinit bool // the sender sent its init again: a fragment that doesn't continue is a reconnect
	// shift is subtracted from composition offsets: a reconnected encoder's edit list minus
	// the one in the init segment already published (which cannot change).
	shift int64
	// text, for a wvtt track, re-cuts its cues on the channel's grid (src is nil then);
	// textScale is the sender's timescale.
	text      *liveText
	textScale uint32
}

type streamReader struct {
	r    *bufio.Reader
	ch   *live.Channel
	name string
	log  *slog.Logger

	pos     uint64 // stream offset of the next box (mp4ff resolves data offsets with it)
	tracks  map[uint32]*streamTrack
	moof    *mp4.MoofBox
	started bool
	ids     ids         // rendition names, shared by the streams of one channel
	idsMu   *sync.Mutex // guards ids when it is shared (nil: not shared)
	refused error       // the first fragment the channel refused since the last feed
	// reinit allows a later moov: an HTTP ingest's encoder may repeat its init or reconnect.
	reinit bool
}

func (s *streamReader) fail(err error) error {
	return fmt.Errorf("%s: at byte %d: %w", s.name, s.pos, err)
}

// next reads the next top-level box, refusing sizes beyond the limits before reading them.
func (s *streamReader) next() (box mp4.Box, err error) {
	hdr, err := s.r.Peek(8)
	if err != nil {
		if err == io.EOF && len(hdr) == 0 {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("truncated box header: %w", io.ErrUnexpectedEOF)
	}
	size := uint64(binary.BigEndian.Uint32(hdr))
	typ := string(hdr[4:8])
	if size == 1 {
		big, err := s.r.Peek(16)
		if err != nil {
			return nil, fmt.Errorf("truncated %q box header", typ)
		}
		size = binary.BigEndian.Uint64(big[8:16])
	}
	if !isBoxType(typ) {
		return nil, fmt.Errorf("not an MP4 box (type %q): the stream is not fragmented MP4", typ)
	}
	limit := uint64(maxStreamFragment)
	if typ == "moov" {
		limit = maxStreamMoov
	}
	switch {
	case size == 0:
		return nil, fmt.Errorf("%q box extends to the end of the stream; a live stream needs sized boxes", typ)
	case size < 8:
		return nil, fmt.Errorf("%q box has invalid size %d", typ, size)
	case size > limit:
		return nil, fmt.Errorf("%q box of %d bytes is larger than the %d allowed", typ, size, limit)
	}
	// Memory grows with the bytes that actually arrive, not with what the header claims.
	var buf bytes.Buffer
	buf.Grow(int(min(size, 1<<20)))
	if n, err := io.CopyN(&buf, s.r, int64(size)); err != nil {
		return nil, fmt.Errorf("truncated %q box (%d of %d bytes): %w", typ, n, size, io.ErrUnexpectedEOF)
	}
	data := buf.Bytes()
	hdrLen := 8
	if binary.BigEndian.Uint32(data) == 1 {
		hdrLen = 16
	}
	if _, container := containers[typ]; container {
		if err := checkBoxTree(data[hdrLen:], 0); err != nil {
			return nil, fmt.Errorf("corrupt %q box: %w", typ, err)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			box, err = nil, fmt.Errorf("corrupt %q box: %v", typ, r)
		}
	}()
	box, err = mp4.DecodeBoxSR(s.pos, bits.NewFixedSliceReader(data))
	if err != nil {
		return nil, fmt.Errorf("corrupt %q box: %w", typ, err)
	}
	s.pos += size
	return box, nil
}

func (s *streamReader) handle(box mp4.Box) error {
	switch b := box.(type) {
	case *mp4.MoovBox:
		if s.tracks != nil {
			return s.again(b)
		}
		return s.setup(b)
	case *mp4.MoofBox:
		if s.tracks == nil {
			return errors.New("moof before moov")
		}
		s.moof = b
	case *mp4.MdatBox:
		if s.moof == nil {
			return nil // stray mdat (a progressive file's?) before any moof: nothing to do
		}
		frag := &mp4.Fragment{Moof: s.moof, Mdat: b}
		s.moof = nil
		return s.fragment(frag)
	}
	return nil // ftyp, styp, sidx, emsg, free…
}

// setup registers the moov's video and audio tracks with the channel.
func (s *streamReader) setup(moov *mp4.MoovBox) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt moov: %v", r)
		}
	}()
	in := &inputFile{path: s.name, moov: moov, fragmented: true}
	if err := in.describeTracks(); err != nil {
		return err
	}
	texts, err := s.textTraks(moov)
	if err != nil {
		return err
	}
	if len(in.tracks) == 0 && len(texts) == 0 {
		return errors.New("no video, audio or wvtt text track")
	}

	s.tracks = map[uint32]*streamTrack{}
	audio := 0
	for _, t := range in.tracks {
		if s.idsMu != nil {
			s.idsMu.Lock()
		}
		st := &streamTrack{src: t, id: s.ids.forTrack(t)}
		if s.idsMu != nil {
			s.idsMu.Unlock()
		}
		if moov.Mvex != nil {
			for _, trex := range moov.Mvex.Trexs {
				if trex.TrackID == t.trackID {
					st.trex = trex
				}
			}
		}
		if st.trex == nil {
			st.trex = &mp4.TrexBox{TrackID: t.trackID}
		}
		init, err := encodeInit(t, t.language)
		if err != nil {
			return err
		}
		info := manifest.Track{
			ID: st.id, Kind: t.kind, Codecs: t.codecs, Timescale: t.timescale,
			Width: t.width, Height: t.height, SAR: t.sar,
			SampleRate: t.sampleRate, Channels: t.channels, Language: t.language,
		}
		if t.kind == manifest.Audio {
			info.Name = audioName(t.language, audio)
			audio++
		}
		if err := s.ch.AddTrack(info, init); err != nil {
			return err
		}
		s.tracks[t.trackID] = st
	}
	for _, tt := range texts {
		if s.idsMu != nil {
			s.idsMu.Lock()
		}
		sub := Subtitle{Language: tt.language}
		sub.Name = subtitleName(sub)
		id := textID(s.ids, sub)
		if s.idsMu != nil {
			s.idsMu.Unlock()
		}
		init, err := subtitles.WvttInit(tt.header, tt.language)
		if err != nil {
			return err
		}
		if err := s.ch.AddTrack(textTrackInfo(id, sub), init); err != nil {
			return err
		}
		s.tracks[tt.trackID] = &streamTrack{id: id, trex: tt.trex, text: newLiveText(id, s.ch.SegmentDuration()), textScale: tt.timescale}
	}
	return nil
}

// streamText is a wvtt text track of a stream's moov.
type streamText struct {
	trackID, timescale uint32
	language           string
	header             *subtitles.Track
	trex               *mp4.TrexBox
}

// textTraks finds the moov's wvtt text tracks (DASH-IF ingest carries subtitles as CMAF wvtt;
// ISO/IEC 14496-30). A text track in another format is not carried (a warning says so); a
// wvtt track that is malformed — no timescale, no vttC, several sample entries — fails the
// stream as bad input.
func (s *streamReader) textTraks(moov *mp4.MoovBox) ([]streamText, error) {
	var out []streamText
	for _, trak := range moov.Traks {
		if trak.Tkhd == nil || trak.Mdia == nil || trak.Mdia.Hdlr == nil || trak.Mdia.Mdhd == nil ||
			trak.Mdia.Minf == nil || trak.Mdia.Minf.Stbl == nil || trak.Mdia.Minf.Stbl.Stsd == nil {
			continue // describeTracks refused an incomplete trak already
		}
		if h := trak.Mdia.Hdlr.HandlerType; h != "text" && h != "subt" {
			continue
		}
		hdr, ts, ok, err := wvttTrack(trak)
		if err != nil {
			return nil, err
		}
		if !ok {
			s.log.Warn("live: text track not carried: only wvtt (WebVTT in CMAF) is", "stream", s.name, "track", trak.Tkhd.TrackID)
			continue
		}
		tt := streamText{trackID: trak.Tkhd.TrackID, timescale: ts, language: trackLanguage(trak.Mdia), header: hdr,
			trex: &mp4.TrexBox{TrackID: trak.Tkhd.TrackID}}
		if moov.Mvex != nil {
			for _, trex := range moov.Mvex.Trexs {
				if trex.TrackID == tt.trackID {
					tt.trex = trex
				}
			}
		}
		out = append(out, tt)
	}
	return out, nil
}

// again handles a moov after the first: an HTTP ingest's encoder repeating its init, or
// reconnecting. The tracks and their sample entries (codec configuration) must be the same —
// a changed configuration would need a new init segment mid-channel, which Reel doesn't do.
// Whether it was a reconnect shows in the timestamps: the next fragment of each track that
// doesn't continue the previous one starts after a discontinuity.
func (s *streamReader) again(moov *mp4.MoovBox) error {
	if !s.reinit {
		return errors.New("a second moov box; restart the stream to change tracks")
	}
	in := &inputFile{path: s.name, moov: moov, fragmented: true}
	if err := in.describeTracks(); err != nil {
		return err
	}
	texts, err := s.textTraks(moov)
	if err != nil {
		return err
	}
	if len(in.tracks)+len(texts) != len(s.tracks) {
		return fmt.Errorf("the encoder came back with %d tracks instead of %d", len(in.tracks)+len(texts), len(s.tracks))
	}
	for _, tt := range texts {
		old := s.tracks[tt.trackID]
		if old == nil || old.text == nil || old.textScale != tt.timescale {
			return fmt.Errorf("the encoder came back with text track %d changed; start a new channel", tt.trackID)
		}
		old.reinit = true
	}
	for _, t := range in.tracks {
		old := s.tracks[t.trackID]
		if old == nil || old.src == nil || !sameEntry(old.src, t) {
			return fmt.Errorf("the encoder came back with track %d's codec configuration changed (%s); start a new channel", t.trackID, t.codecs)
		}
		old.shift = t.edit - old.src.edit
		old.reinit = true
	}
	return nil
}

// sameEntry reports whether two tracks have the same timescale and sample entry bytes.
func sameEntry(a, b *inputTrack) bool {
	if a.timescale != b.timescale || a.codecs != b.codecs {
		return false
	}
	var x, y bytes.Buffer
	if a.entry.Encode(&x) != nil || b.entry.Encode(&y) != nil {
		return false
	}
	return bytes.Equal(x.Bytes(), y.Bytes())
}

// fragment splits one moof+mdat into a CMAF chunk per track and appends them.
func (s *streamReader) fragment(frag *mp4.Fragment) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt fragment: %v", r)
		}
	}()
	if !s.started {
		s.ch.SetStart(time.Now())
		s.started = true
	}
	for _, traf := range frag.Moof.Trafs {
		if traf.Tfhd == nil {
			return errors.New("traf without tfhd")
		}
		st := s.tracks[traf.Tfhd.TrackID]
		if st == nil {
			continue // a track we don't carry (text, timecode)
		}
		samples, err := frag.GetFullSamples(st.trex)
		if err != nil {
			return fmt.Errorf("track %d: %w", traf.Tfhd.TrackID, err)
		}
		if len(samples) == 0 {
			continue
		}
		if st.text != nil {
			err := ingestText(s.ch, st.text, samples, st.textScale, st.reinit)
			st.reinit = false
			if err != nil {
				s.log.Warn("live: text fragment refused", "stream", s.name, "track", st.id, "err", err)
				if s.refused == nil {
					s.refused = fmt.Errorf("track %s: %w", st.id, err)
				}
			}
			continue
		}
		f, err := st.chunk(samples)
		if err != nil {
			return fmt.Errorf("track %d: %w", traf.Tfhd.TrackID, err)
		}
		err = s.ch.Append(st.id, f)
		if errors.Is(err, live.ErrBackwards) && st.reinit {
			// The encoder reconnected with its clock restarted.
			if err = s.ch.TrackDiscontinuity(st.id); err == nil {
				err = s.ch.Append(st.id, f)
			}
		}
		st.reinit = false
		if err != nil {
			// One track's bad fragment (time going backwards…) is refused and reported; the
			// stream's other tracks go on.
			s.log.Warn("live: fragment refused", "stream", s.name, "track", st.id, "err", err)
			if s.refused == nil {
				s.refused = fmt.Errorf("track %s: %w", st.id, err)
			}
		}
	}
	return nil
}

// chunk encodes samples as a single-track CMAF chunk (moof+mdat, track 1 as in our init).
func (st *streamTrack) chunk(samples []mp4.FullSample) (live.Fragment, error) {
	st.seq++
	chunk := make([]sample, len(samples))
	var dur uint64
	var size int
	for i, fs := range samples {
		if int(fs.Size) != len(fs.Data) {
			return live.Fragment{}, fmt.Errorf("sample of %d bytes has %d bytes of data", fs.Size, len(fs.Data))
		}
		chunk[i] = sample{
			dur: fs.Dur, size: fs.Size, cto: int32(int64(fs.CompositionTimeOffset) - st.shift),
			sync: st.src.kind == manifest.Audio || mp4.IsSyncSampleFlags(fs.Flags),
		}
		dur += uint64(fs.Dur)
		size += len(fs.Data)
	}
	hdr, err := fragmentHeader(st.seq, samples[0].DecodeTime, chunk)
	if err != nil {
		return live.Fragment{}, err
	}
	buf := bytes.NewBuffer(make([]byte, 0, len(hdr)+size))
	buf.Write(hdr)
	for _, fs := range samples {
		buf.Write(fs.Data)
	}
	return live.Fragment{Data: buf.Bytes(), Decode: samples[0].DecodeTime, Duration: dur, Independent: chunk[0].sync}, nil
}
