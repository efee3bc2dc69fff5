package subtitles

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/Eyevinn/mp4ff/mp4"
	"golang.org/x/text/language"
)

// WvttTimescale is the wvtt track's timescale: milliseconds, so cue times are sample times
// exactly.
const WvttTimescale = 1000

// WvttInit returns the init segment (ftyp+moov) of a CMAF WebVTT track (ISO/IEC 14496-30 §7):
// handler "text", a null media header, and a wvtt sample entry whose vttC holds the track's
// WebVTT header with its REGION and STYLE blocks, and the brand of CMAF's WebVTT media
// profile, cwvt (ISO/IEC 23000-19, subtitle media profiles). bcp47 is the language: in mdhd
// as ISO 639-2 when it is a bare language ("fr" → "fra"), the full tag in elng otherwise, as
// the packager does for its other tracks (ffmpeg and some players read only mdhd).
func WvttInit(t *Track, bcp47 string) ([]byte, error) {
	init := mp4.CreateEmptyInit()
	init.Ftyp.AddCompatibleBrands([]string{"cwvt"})
	trak := init.AddEmptyTrack(WvttTimescale, "wvtt", mdhdLanguage(bcp47))
	if err := trak.SetWvttDescriptor(strings.TrimRight(t.Header(), "\n")); err != nil {
		return nil, fmt.Errorf("wvtt sample entry: %w", err)
	}
	var buf bytes.Buffer
	if err := init.Encode(&buf); err != nil {
		return nil, fmt.Errorf("encoding wvtt init segment: %w", err)
	}
	return buf.Bytes(), nil
}

// mdhdLanguage is what mp4ff's AddEmptyTrack takes for the BCP 47 tag bcp47: ISO 639-2 for a
// bare language (it goes in mdhd), else the tag (in elng, mdhd saying "und").
func mdhdLanguage(bcp47 string) string {
	lang := "und"
	if tag, err := language.Parse(bcp47); err == nil && bcp47 != "" {
		lang = bcp47
		if base, conf := tag.Base(); conf == language.Exact && base.String() == lang {
			lang = base.ISO3()
		}
	}
	return lang
}

// WriteWvttSegment writes one CMAF wvtt segment (styp+moof+mdat, track 1) covering
// [start, end) ms: its samples tile the span without gaps, each either the cues showing
// throughout it (a vttc each: iden, sttg, payl) or, where none shows, one vtte. A cue
// reaching outside the segment is clipped to it here — wvtt carries times in the samples, and
// a later segment carries the rest; CuesFromWvtt joins the pieces again.
func WriteWvttSegment(w io.Writer, seq uint32, start, end int64, cues []Cue) error {
	if end <= start || start < 0 {
		return fmt.Errorf("subtitles: wvtt segment [%d, %d) ms is empty", start, end)
	}
	if end-start > math.MaxUint32 {
		return fmt.Errorf("subtitles: wvtt segment [%d, %d) ms is longer than a sample can last", start, end)
	}
	// Sample boundaries: the segment's ends and every cue edge inside it.
	edges := []int64{start, end}
	for _, c := range cues {
		for _, t := range []int64{c.Start, c.End} {
			if t > start && t < end {
				edges = append(edges, t)
			}
		}
	}
	slices.Sort(edges)
	edges = slices.Compact(edges)
	frag, err := mp4.CreateFragment(seq, 1)
	if err != nil {
		return fmt.Errorf("wvtt fragment: %w", err)
	}
	for i := 0; i+1 < len(edges); i++ {
		s, e := edges[i], edges[i+1]
		data, err := wvttSample(cues, s, e)
		if err != nil {
			return err
		}
		frag.AddFullSample(mp4.FullSample{
			Sample:     mp4.Sample{Flags: mp4.SyncSampleFlags, Dur: uint32(e - s), Size: uint32(len(data))},
			DecodeTime: uint64(s),
			Data:       data,
		})
	}
	return writeSegment(w, frag, "wvtt")
}

// writeSegment writes a CMAF media segment: styp, then frag (its moof and mdat), whole, with
// one Write.
func writeSegment(w io.Writer, frag *mp4.Fragment, format string) error {
	var buf bytes.Buffer
	if err := mp4.CreateStyp().Encode(&buf); err != nil {
		return err
	}
	if err := frag.Encode(&buf); err != nil {
		return fmt.Errorf("encoding %s segment: %w", format, err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// wvttSample is the sample for [s, e): a vttc per cue showing then, or a vtte.
func wvttSample(cues []Cue, s, e int64) ([]byte, error) {
	var boxes []mp4.Box
	for _, c := range cues {
		// Zero-length cues cannot be a sample of their own; they show for no time.
		if c.Start <= s && c.End >= e && c.End > c.Start {
			vttc := &mp4.VttcBox{}
			if id := cueID(c.ID); id != "" {
				vttc.AddChild(&mp4.IdenBox{CueID: id})
			}
			if st := c.Settings.String(); st != "" {
				vttc.AddChild(&mp4.SttgBox{Settings: st})
			}
			vttc.AddChild(&mp4.PaylBox{CueText: cueText(c.Text)})
			boxes = append(boxes, vttc)
		}
	}
	if len(boxes) == 0 {
		boxes = append(boxes, &mp4.VtteBox{})
	}
	var buf bytes.Buffer
	for _, b := range boxes {
		if err := b.Encode(&buf); err != nil {
			return nil, fmt.Errorf("encoding wvtt sample: %w", err)
		}
	}
	return buf.Bytes(), nil
}

// CuesFromWvtt rebuilds cues from wvtt samples (in decode order, times in units of
// 1/timescale s — WvttTimescale for ours, whatever an encoder's track says for others), joining a cue's pieces in consecutive samples, across segments too: a vttc
// equal to one in the sample just before (same iden, sttg, payl) continues that cue. (So two
// identical cues back to back come out as one — the same thing on screen.)
func CuesFromWvtt(samples []mp4.FullSample, timescale uint32) ([]Cue, error) {
	var done []Cue
	var open []Cue // cues in the previous sample
	var prevEnd int64 = -1
	for _, s := range samples {
		t0 := MsFromTimescale(s.DecodeTime, timescale)
		t1 := MsFromTimescale(s.DecodeTime+uint64(s.Dur), timescale)
		var now []Cue
		for pos := 0; pos < len(s.Data); {
			box, err := mp4.DecodeBox(uint64(pos), bytes.NewReader(s.Data[pos:]))
			if err != nil {
				return nil, fmt.Errorf("wvtt sample at %d ms: %w", t0, err)
			}
			pos += int(box.Size())
			vttc, ok := box.(*mp4.VttcBox)
			if !ok {
				continue
			}
			c := Cue{Start: t0, End: t1}
			if vttc.Iden != nil {
				c.ID = vttc.Iden.CueID
			}
			if vttc.Sttg != nil {
				c.Settings = parseSettings(vttc.Sttg.Settings)
			}
			if vttc.Payl != nil {
				c.Text = vttc.Payl.CueText
			}
			now = append(now, c)
		}
		var still []Cue
		for i := range now {
			if t0 == prevEnd {
				if k := slices.IndexFunc(open, func(o Cue) bool { return sameCue(o, now[i]) }); k >= 0 {
					now[i].Start = open[k].Start
					open = slices.Delete(open, k, k+1)
				}
			}
			still = append(still, now[i])
		}
		done = append(done, open...)
		open, prevEnd = still, t1
	}
	done = append(done, open...)
	slices.SortStableFunc(done, func(a, b Cue) int { return cmpInt(a.Start, b.Start) })
	return done, nil
}

func sameCue(a, b Cue) bool { return a.ID == b.ID && a.Text == b.Text && a.Settings == b.Settings }
