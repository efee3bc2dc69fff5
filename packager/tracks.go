package packager

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/Eyevinn/mp4ff/aac"
	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/hevc"
	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/manifest"
	"golang.org/x/text/language"
)

// inputTrack is one video or audio track of an input file, with what the manifests need to
// know about its codec. Timing statistics are gathered while packaging.
type inputTrack struct {
	in        *inputFile
	trackID   uint32
	kind      manifest.Kind
	timescale uint32
	codecs    string
	entry     mp4.Box // the sample entry (avc1, hvc1, mp4a…) copied into our init segment
	// edit is the media time of the input's first non-empty edit (AAC encoder priming, B-frame
	// delay): the media time presented at time zero. It is written into our init segment's
	// edit list, as the input had it, so timestamps keep their meaning.
	edit     int64
	language string // from mdhd/elng; "" when undetermined

	width, height int
	sar           manifest.Rational

	sampleRate, channels int
}

// newIter returns a fresh sample cursor for the track.
func (t *inputTrack) newIter() (sampleIter, error) {
	if t.in.fragmented {
		return newFragmentedIter(t.in, t.trackID), nil
	}
	trak := t.trak()
	return newProgressiveIter(trak.Mdia.Minf.Stbl)
}

func (t *inputTrack) trak() *mp4.TrakBox {
	for _, tr := range t.in.moov.Traks {
		if tr.Tkhd != nil && tr.Tkhd.TrackID == t.trackID {
			return tr
		}
	}
	return nil
}

// describeTracks fills in.tracks with the file's video and audio tracks. Other tracks (text,
// timecode) are skipped; an unsupported audio or video codec is an error, not a silent skip.
func (in *inputFile) describeTracks() error {
	for _, trak := range in.moov.Traks {
		if trak.Tkhd == nil || trak.Mdia == nil || trak.Mdia.Hdlr == nil || trak.Mdia.Mdhd == nil ||
			trak.Mdia.Minf == nil || trak.Mdia.Minf.Stbl == nil || trak.Mdia.Minf.Stbl.Stsd == nil {
			return errors.New("corrupt moov: incomplete trak box")
		}
		var kind manifest.Kind
		switch trak.Mdia.Hdlr.HandlerType {
		case "vide":
			kind = manifest.Video
		case "soun":
			kind = manifest.Audio
		default:
			continue
		}
		stsd := trak.Mdia.Minf.Stbl.Stsd
		if len(stsd.Children) != 1 {
			return fmt.Errorf("track %d has %d sample descriptions; only one is supported", trak.Tkhd.TrackID, len(stsd.Children))
		}
		t := &inputTrack{
			in:        in,
			trackID:   trak.Tkhd.TrackID,
			kind:      kind,
			timescale: trak.Mdia.Mdhd.Timescale,
			entry:     stsd.Children[0],
			sar:       manifest.Rational{Num: 1, Den: 1},
		}
		if t.timescale == 0 {
			return fmt.Errorf("track %d has timescale 0", t.trackID)
		}
		t.language = trackLanguage(trak.Mdia)
		if err := t.describeCodec(); err != nil {
			return err
		}
		t.edit = editMediaTime(trak)
		in.tracks = append(in.tracks, t)
	}
	return nil
}

// priming is the media time the edit list hides before the first sample is presented: AAC
// priming for audio, nothing for video whose first frame's composition offset the edit
// cancels (first is the first sample in decode order).
func (t *inputTrack) priming(first sample) uint64 {
	return uint64(max(t.edit-int64(first.cto), 0))
}

// editMediaTime returns the media time of the first non-empty edit, or 0. An empty edit (a
// delay before the track starts) is not carried over: Reel starts every track at time zero.
func editMediaTime(trak *mp4.TrakBox) int64 {
	if trak.Edts == nil {
		return 0
	}
	for _, elst := range trak.Edts.Elst {
		for _, e := range elst.Entries {
			if e.MediaTime >= 0 {
				return e.MediaTime
			}
		}
	}
	return 0
}

// trackLanguage returns the track's language as a canonical BCP 47 tag (mdhd's ISO 639-2
// "fra" becomes "fr", as HLS LANGUAGE and DASH @lang expect), "" when undetermined.
func trackLanguage(mdia *mp4.MdiaBox) string {
	l := mdia.Mdhd.GetLanguage()
	if mdia.Elng != nil && mdia.Elng.Language != "" {
		l = mdia.Elng.Language
	}
	tag, err := language.Parse(l)
	if l == "" || l == "und" || err != nil {
		return ""
	}
	return tag.String()
}

// describeCodec derives the RFC 6381 codec string and the picture or audio parameters from the
// decoder configuration in the sample entry, not from container metadata that may lie.
func (t *inputTrack) describeCodec() error {
	switch e := t.entry.(type) {
	case *mp4.VisualSampleEntryBox:
		t.width, t.height = int(e.Width), int(e.Height)
		if e.Pasp != nil && e.Pasp.HSpacing > 0 && e.Pasp.VSpacing > 0 {
			t.sar = reduce(int(e.Pasp.HSpacing), int(e.Pasp.VSpacing))
		}
		name := e.Type()
		switch name {
		case "avc1", "avc3":
			if e.AvcC == nil || len(e.AvcC.SPSnalus) == 0 {
				return fmt.Errorf("%s track %d has no avcC/SPS", name, t.trackID)
			}
			sps, err := avc.ParseSPSNALUnit(e.AvcC.SPSnalus[0], false)
			if err != nil {
				return fmt.Errorf("%s track %d: bad SPS: %w", name, t.trackID, err)
			}
			t.codecs = fmt.Sprintf("%s.%02x%02x%02x", name, sps.Profile, sps.ProfileCompatibility, sps.Level)
			if e.Pasp == nil && sps.VUI != nil && sps.VUI.SampleAspectRatioWidth > 0 && sps.VUI.SampleAspectRatioHeight > 0 {
				t.sar = reduce(int(sps.VUI.SampleAspectRatioWidth), int(sps.VUI.SampleAspectRatioHeight))
			}
		case "hvc1", "hev1":
			if e.HvcC == nil {
				return fmt.Errorf("%s track %d has no hvcC", name, t.trackID)
			}
			spss := e.HvcC.GetNalusForType(hevc.NALU_SPS)
			if len(spss) == 0 {
				return fmt.Errorf("%s track %d has no SPS in hvcC", name, t.trackID)
			}
			sps, err := hevc.ParseSPSNALUnit(spss[0])
			if err != nil {
				return fmt.Errorf("%s track %d: bad SPS: %w", name, t.trackID, err)
			}
			t.codecs = hevc.CodecString(name, sps)
		default:
			return &UnsupportedCodecError{Codec: name}
		}
		if t.width == 0 || t.height == 0 {
			return fmt.Errorf("video track %d has no picture size", t.trackID)
		}
	case *mp4.AudioSampleEntryBox:
		name := e.Type()
		if name != "mp4a" || e.Esds == nil || e.Esds.DecConfigDescriptor == nil {
			return &UnsupportedCodecError{Codec: name}
		}
		dc := e.Esds.DecConfigDescriptor
		if dc.ObjectType != 0x40 { // 0x40 = MPEG-4 Audio; 0x69/0x6B are MP3
			return &UnsupportedCodecError{Codec: fmt.Sprintf("mp4a.%02x", dc.ObjectType)}
		}
		if dc.DecSpecificInfo == nil {
			return fmt.Errorf("AAC track %d has no AudioSpecificConfig", t.trackID)
		}
		asc, err := aac.DecodeAudioSpecificConfigHeader(bytes.NewReader(dc.DecSpecificInfo.DecConfig))
		if err != nil {
			return fmt.Errorf("AAC track %d: %w", t.trackID, err)
		}
		t.codecs = fmt.Sprintf("mp4a.40.%d", asc.ObjectType)
		t.sampleRate = asc.SamplingFrequency
		t.channels = aacChannels(asc.ChannelConfiguration, int(e.ChannelCount))
		if t.sampleRate == 0 {
			t.sampleRate = int(e.SampleRate)
		}
	default:
		return &UnsupportedCodecError{Codec: t.entry.Type()}
	}
	return nil
}

// aacChannels maps the AAC channel configuration (ISO/IEC 14496-3 Table 1.19) to a channel
// count; configuration 0 means "in the bitstream", where the sample entry's count is our best.
func aacChannels(cfg byte, entry int) int {
	switch {
	case cfg >= 1 && cfg <= 6:
		return int(cfg)
	case cfg == 7:
		return 8
	}
	return max(entry, 1)
}

func reduce(a, b int) manifest.Rational {
	g := gcd(a, b)
	if g == 0 {
		return manifest.Rational{Num: a, Den: b}
	}
	return manifest.Rational{Num: a / g, Den: b / g}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
