package packager

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/subtitles"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// Subtitle is one sidecar text file (WebVTT, SRT or TTML/IMSC1 text) to package with the
// ladder. Each becomes two text tracks cut at the video's segment boundaries: segmented WebVTT
// for HLS (text_<lang>/seg_NNNNN.vtt), and for DASH CMAF wvtt (text_<lang>_wvtt/) or, from
// TTML, CMAF stpp of IMSC1 text documents with the input's styles and regions
// (text_<lang>_stpp/). Text is never
// encrypted, whatever Options.Encryption says: the manifest model refuses encrypted text, and
// no player decrypts it.
type Subtitle struct {
	File string
	// Language is a BCP 47 tag; empty: guessed from a file named like film.fr.vtt (the
	// convention of media players and of ffmpeg users), else undetermined.
	Language string
	// Name is the menu label; empty: the language's own name ("Français"), with "(forced)"
	// or "SDH" after it for such tracks.
	Name string
	// Default shows the track without the viewer asking (at most one); Forced marks the
	// cues essential to the story (foreign dialogue, signs); SDH, subtitles for the deaf and
	// hard of hearing.
	Default, Forced, SDH bool
}

// textInput is a parsed Subtitle with its settled language and name.
type textInput struct {
	sub   Subtitle
	track *subtitles.Track
}

// parseSubtitles reads and parses every subtitle file before anything is written, so that a
// malformed one fails the run with its file:line: problem and nothing is published.
func parseSubtitles(subs []Subtitle) ([]textInput, error) {
	var out []textInput
	defaults := 0
	for _, s := range subs {
		if s.File == "" {
			return nil, errors.New("subtitle: no file")
		}
		if s.Default {
			if defaults++; defaults > 1 {
				return nil, errors.New("subtitles: more than one default track")
			}
		}
		if s.Language == "" {
			s.Language = GuessSubtitleLanguage(s.File)
		}
		if s.Language != "" {
			tag, err := language.Parse(s.Language)
			if err != nil {
				return nil, fmt.Errorf("%s: language %q is not a BCP 47 tag", s.File, s.Language)
			}
			s.Language = tag.String()
		}
		if s.Name == "" {
			s.Name = subtitleName(s)
		}
		if strings.ContainsAny(s.Name, "\"\r\n") {
			return nil, fmt.Errorf("%s: name %q: a double quote or a line break cannot go in an HLS playlist", s.File, s.Name)
		}
		data, err := os.ReadFile(s.File)
		if err != nil {
			return nil, &InputError{File: s.File, Err: unwrapPath(err)}
		}
		tr, err := subtitles.Parse(s.File, data)
		if err != nil {
			return nil, err // a *subtitles.ParseError: "file:line: problem", one line
		}
		out = append(out, textInput{sub: s, track: tr})
	}
	return out, nil
}

// GuessSubtitleLanguage reads the language of a file named like film.fr.vtt, film.pt-BR.srt
// or film.en.sdh.srt (the media players' convention; forced, sdh, cc and hi after the language
// are passed over, not taken as flags): the last part before the extension that is a known
// BCP 47 tag (film.final.vtt has none). It returns "" when there is none.
func GuessSubtitleLanguage(file string) string {
	parts := strings.Split(strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)), ".")
	for i := len(parts) - 1; i > 0; i-- {
		part := parts[i]
		switch strings.ToLower(part) {
		case "forced", "sdh", "cc", "hi":
			continue
		}
		tag, err := language.Parse(part)
		if err != nil || len(part) < 2 {
			return ""
		}
		if b, conf := tag.Base(); conf != language.Exact || b.String() == "und" {
			return ""
		}
		return tag.String()
	}
	return ""
}

// subtitleName is the menu label of s when none is given.
func subtitleName(s Subtitle) string {
	name := "Subtitles"
	if tag, err := language.Parse(s.Language); err == nil && s.Language != "" {
		if n := []rune(display.Self.Name(tag)); len(n) > 0 {
			// A menu entry starts with a capital, even where the language's name does not.
			name = string(unicode.ToUpper(n[0])) + string(n[1:])
		} else {
			name = s.Language
		}
	}
	if s.SDH {
		name += " SDH"
	}
	if s.Forced {
		name += " (forced)"
	}
	return name
}

// textIDs names text track folders: text_fr, text_fr_forced, text_en_sdh, text (no language),
// made unique with a numeric suffix.
func textID(m ids, s Subtitle) string {
	base := "text"
	if s.Language != "" {
		base += "_" + sanitizeID(s.Language)
	}
	if s.Forced {
		base += "_forced"
	}
	if s.SDH {
		base += "_sdh"
	}
	m[base]++
	if n := m[base]; n > 1 {
		return fmt.Sprintf("%s_%d", base, n)
	}
	return base
}

// textCuts are the text tracks' segment boundaries in ms: the reference video's segment
// starts and its end, as the media's tfdt give them (subtitles.MsFromTimescale), so text
// segment i is media segment i.
type textCuts struct {
	starts []int64
	end    int64
	origin int64 // ms of media time at presentation time 0 (the DASH period start)
}

func cutsOf(p *manifest.Presentation) (textCuts, error) {
	v := p.Video[0]
	var c textCuts
	for _, s := range v.Segments {
		c.starts = append(c.starts, subtitles.MsFromTimescale(s.Start, v.Timescale))
	}
	last := v.Segments[len(v.Segments)-1]
	c.end = subtitles.MsFromTimescale(last.Start+last.Duration, v.Timescale)
	c.origin = -1
	for _, t := range p.Tracks() {
		if o := subtitles.MsFromTimescale(t.Segments[0].Start, t.Timescale); c.origin < 0 || o < c.origin {
			c.origin = o
		}
	}
	for i := 1; i < len(c.starts); i++ {
		if c.starts[i] <= c.starts[i-1] {
			return c, fmt.Errorf("video segments %d and %d start in the same millisecond", i-1, i)
		}
	}
	if c.end <= c.starts[len(c.starts)-1] {
		return c, fmt.Errorf("last video segment shorter than a millisecond")
	}
	return c, nil
}

// writeText writes every subtitle input into tmp as a WebVTT and a WVTT or IMSC1 track and adds them to
// p.Text. Cue times move from the presentation's start to media time (the origin), so that one
// timeline serves both: WebVTT segments map cue time to media time with MPEGTS 0 (the media's
// own 90 kHz clock) and wvtt samples sit at media times under the DASH period's
// presentationTimeOffset, like the video's.
func writeText(tmp string, p *manifest.Presentation, inputs []textInput, single bool, log *slog.Logger) error {
	if len(inputs) == 0 {
		return nil
	}
	cuts, err := cutsOf(p)
	if err != nil {
		return fmt.Errorf("subtitles: %w", err)
	}
	m := ids{}
	for _, in := range inputs {
		cues := make([]subtitles.Cue, len(in.track.Cues))
		past := 0
		for i, c := range in.track.Cues {
			c.Start += cuts.origin
			c.End += cuts.origin
			cues[i] = c
			if c.Start >= cuts.end || max(c.End, c.Start+1) <= cuts.starts[0] {
				past++
			}
		}
		for _, w := range in.track.Warnings {
			log.Warn("subtitle cue not shown as meant", "problem", w)
		}
		if past > 0 {
			log.Warn("subtitle cues outside the video are left out", "file", in.sub.File, "cues", past,
				"video_end", fmt.Sprintf("%.3fs", float64(cuts.end-cuts.origin)/1000))
		}
		segs, err := subtitles.Split(cues, cuts.starts, cuts.end)
		if err != nil {
			return fmt.Errorf("%s: %w", in.sub.File, err)
		}
		id := textID(m, in.sub)
		vtt, err := writeVTTTrack(filepath.Join(tmp, id), id, in, segs, cuts)
		if err != nil {
			return err
		}
		// DASH gets the cues in the input's own kind: IMSC1 (stpp) for TTML, which keeps its
		// styling and regions, WebVTT (wvtt) for WebVTT and SRT. Not both: the two would be two
		// entries of one language in a player's menu, and dash.js and Shaka Player read either.
		var dash *manifest.Track
		if in.track.IMSC != nil {
			dash, err = writeStppTrack(filepath.Join(tmp, id+"_stpp"), id+"_stpp", in, segs, cuts, single)
		} else {
			dash, err = writeWvttTrack(filepath.Join(tmp, id+"_wvtt"), id+"_wvtt", in, segs, cuts, single)
		}
		if err != nil {
			return err
		}
		p.Text = append(p.Text, vtt, dash)
	}
	return nil
}

// newTextTrack is the manifest track of in in format f, without segments.
func newTextTrack(id string, f manifest.TextFormat, in textInput) *manifest.Track {
	return &manifest.Track{
		ID: id, Kind: manifest.Text, Format: f, Timescale: subtitles.WvttTimescale,
		Language: in.sub.Language, Name: in.sub.Name, Default: in.sub.Default,
		Forced: in.sub.Forced, SDH: in.sub.SDH, Autoselect: true,
	}
}

// segSpan is text segment i's [start, end) in ms.
func (c textCuts) segSpan(i int) (int64, int64) {
	if i+1 < len(c.starts) {
		return c.starts[i], c.starts[i+1]
	}
	return c.starts[i], c.end
}

// writeVTTTrack writes segmented WebVTT: whole files, in single-file mode too (a byte range
// of a WebVTT file is not a WebVTT file).
func writeVTTTrack(dir, id string, in textInput, segs [][]subtitles.Cue, cuts textCuts) (*manifest.Track, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	t := newTextTrack(id, manifest.WebVTT, in)
	for i, cues := range segs {
		var b bytes.Buffer
		if err := subtitles.WriteHLSSegment(&b, in.track, cues, 0); err != nil {
			return nil, err
		}
		uri := fmt.Sprintf("seg_%05d.vtt", i+1)
		if err := os.WriteFile(filepath.Join(dir, uri), b.Bytes(), 0o644); err != nil {
			return nil, err
		}
		s, e := cuts.segSpan(i)
		t.Segments = append(t.Segments, manifest.Segment{Start: uint64(s), Duration: uint64(e - s), URI: uri, Size: int64(b.Len())})
	}
	measure(t)
	return t, nil
}

// writeWvttTrack writes a CMAF wvtt track (see writeCMAFText).
func writeWvttTrack(dir, id string, in textInput, segs [][]subtitles.Cue, cuts textCuts, single bool) (*manifest.Track, error) {
	init, err := subtitles.WvttInit(in.track, in.sub.Language)
	if err != nil {
		return nil, err
	}
	return writeCMAFText(dir, newTextTrack(id, manifest.WVTT, in), init, segs, cuts, single,
		func(w io.Writer, seq uint32, s, e int64, cues []subtitles.Cue) error {
			return subtitles.WriteWvttSegment(w, seq, s, e, cues)
		})
}

// writeStppTrack writes a CMAF stpp track of IMSC1 text documents (see writeCMAFText).
func writeStppTrack(dir, id string, in textInput, segs [][]subtitles.Cue, cuts textCuts, single bool) (*manifest.Track, error) {
	init, err := subtitles.StppInit(in.sub.Language)
	if err != nil {
		return nil, err
	}
	return writeCMAFText(dir, newTextTrack(id, manifest.IMSC1, in), init, segs, cuts, single,
		func(w io.Writer, seq uint32, s, e int64, cues []subtitles.Cue) error {
			return subtitles.WriteStppSegment(w, in.track, in.sub.Language, seq, s, e, cues)
		})
}

// writeCMAFText writes a CMAF text track t: init.mp4 and seg_NNNNN.m4s, or in single-file
// mode one media.mp4 (init, sidx, fragments) addressed by DASH SegmentBase like the media
// tracks. write writes segment seq, [s, e) ms.
func writeCMAFText(dir string, t *manifest.Track, init []byte, segs [][]subtitles.Cue, cuts textCuts, single bool,
	write func(w io.Writer, seq uint32, s, e int64, cues []subtitles.Cue) error) (*manifest.Track, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	var frags [][]byte
	for i, cues := range segs {
		s, e := cuts.segSpan(i)
		var b bytes.Buffer
		if err := write(&b, uint32(i+1), s, e, cues); err != nil {
			return nil, err
		}
		frags = append(frags, b.Bytes())
		t.Segments = append(t.Segments, manifest.Segment{Start: uint64(s), Duration: uint64(e - s), Size: int64(b.Len())})
	}
	if !single {
		t.InitURI, t.SegmentTemplate, t.StartNumber = manifest.InitSegmentName, segmentTemplate, 1
		if err := os.WriteFile(filepath.Join(dir, manifest.InitSegmentName), init, 0o644); err != nil {
			return nil, err
		}
		for i, f := range frags {
			t.Segments[i].URI = fmt.Sprintf(segmentPattern, i+1)
			if err := os.WriteFile(filepath.Join(dir, t.Segments[i].URI), f, 0o644); err != nil {
				return nil, err
			}
		}
		measure(t)
		return t, nil
	}
	sidx := &mp4.SidxBox{ReferenceID: 1, Timescale: t.Timescale, EarliestPresentationTime: t.Segments[0].Start}
	for _, s := range t.Segments {
		sidx.SidxRefs = append(sidx.SidxRefs, mp4.SidxRef{ReferencedSize: uint32(s.Size),
			SubSegmentDuration: uint32(s.Duration), StartsWithSAP: 1, SAPType: 1})
	}
	var file bytes.Buffer
	file.Write(init)
	if err := sidx.Encode(&file); err != nil {
		return nil, fmt.Errorf("encoding sidx: %w", err)
	}
	t.InitURI = singleFileName
	t.InitRange = manifest.ByteRange{Offset: 0, Length: int64(len(init))}
	t.IndexRange = manifest.ByteRange{Offset: int64(len(init)), Length: int64(file.Len() - len(init))}
	for i, f := range frags {
		t.Segments[i].URI = singleFileName
		t.Segments[i].Range = manifest.ByteRange{Offset: int64(file.Len()), Length: int64(len(f))}
		file.Write(f)
	}
	if err := os.WriteFile(filepath.Join(dir, singleFileName), file.Bytes(), 0o644); err != nil {
		return nil, err
	}
	measure(t)
	return t, nil
}

// measure fills a text track's bandwidth from its segment sizes.
func measure(t *manifest.Track) {
	t.PeakBandwidth, t.AverageBandwidth = bandwidth(t.Timescale, len(t.Segments), func(i int) (int64, uint64) {
		return t.Segments[i].Size, t.Segments[i].Duration
	})
}
