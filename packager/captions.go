package packager

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/captions"
	"golang.org/x/text/language"
)

// Closed captions (CEA-608/708 in the video's SEI) cost nothing to carry — they stay in the
// video samples — but players only offer them when the manifests say so (HLS CLOSED-CAPTIONS
// with INSTREAM-ID, DASH Accessibility). So the packager looks for them in every video track
// and signals what it finds; --cc labels them (language, name).
//
// The scan covers the whole track: captions may start late (a programme after a promo, a
// film's foreign dialogue), and a scan of the first seconds would miss them and then signal
// CLOSED-CAPTIONS=NONE, which hides them from players that would otherwise have found them.
// It stays cheap because it reads only each sample's head — the NAL units before its first
// slice, where SEI must be (captions.Prefix): one read of headRead bytes per sample, a few
// hundred bytes of a picture of tens of kilobytes. Neither Shaka Packager nor Bento4 looks at
// all: they signal captions only when told.

// headRead is the first read of a sample's head: enough for an access unit delimiter,
// in-band parameter sets and caption SEI. A longer prefix (x264's version SEI on the first
// picture) is read in further steps up to maxHead.
const (
	headRead = 1 << 10
	maxHead  = 1 << 20 // beyond this, SEI is not captions but garbage: the sample's rest is skipped
)

// detectCaptions returns the caption channels (HLS INSTREAM-IDs) found in a video track's
// SEI, nil for a codec that carries none this way, and how many bytes it read.
func detectCaptions(t *inputTrack) (chans []string, read int64, err error) {
	var codec captions.Codec
	switch t.entry.Type() {
	case "avc1", "avc3":
		codec = captions.H264
	case "hvc1", "hev1":
		codec = captions.HEVC
	default:
		return nil, 0, nil
	}
	// mp4ff refuses an avcC or hvcC whose NAL lengths are not 4 bytes (avc.ErrLengthSize), so
	// every track that opened has 4-byte lengths.
	const lengthSize = 4
	d := captions.NewDetector(codec, lengthSize)
	buf := make([]byte, headRead)
	var readErr error
	err = walkSamples(t, func(s sample) {
		if readErr != nil {
			return
		}
		var head []byte
		var n int
		head, buf, n, readErr = sampleHead(t.in, s, codec, lengthSize, buf)
		read += int64(n)
		d.Sample(int64(s.dts)+int64(s.cto), head)
	})
	if err == nil && readErr != nil {
		err = inputErr(t.in.path, readErr)
	}
	if err != nil {
		return nil, read, err
	}
	return d.Channels(), read, nil
}

// sampleHead reads the NAL units of s that come before its first slice, into buf (grown when a
// longer prefix needs it, and returned for the next sample); read is the bytes it read.
func sampleHead(in *inputFile, s sample, codec captions.Codec, lengthSize int, buf []byte) (head, grown []byte, read int, err error) {
	size := int(s.size)
	n := min(size, len(buf))
	for {
		if _, err := in.f.ReadAt(buf[:n], s.off); err != nil {
			return nil, buf, read, fmt.Errorf("reading sample at offset %d: %w", s.off, err)
		}
		read += n
		p, more := captions.Prefix(codec, lengthSize, buf[:n], size)
		if !more || n == size || n >= maxHead {
			return buf[:p], buf, read, nil
		}
		n = min(size, n*4, maxHead)
		if n > len(buf) {
			buf = make([]byte, n)
		}
	}
}

// setCaptions gives every video track the captions found in it, labelled by labels; a
// channel that labels name but the scan did not find is signalled too, with a warning: the
// operator knows the feed (captions in a form the scan does not read, such as SCTE-20 or
// DirecTV user data, still reach players that decode it).
func setCaptions(p *manifest.Presentation, found map[*manifest.Track][]string, labels []manifest.Caption, log *slog.Logger) {
	for _, v := range p.Video {
		chans := slices.Clone(found[v])
		for _, l := range labels {
			if !slices.Contains(chans, l.Channel) {
				log.Warn("closed captions given by --cc not found in the video's SEI; signalled anyway", "track", v.ID, "channel", l.Channel)
				chans = append(chans, l.Channel)
			}
		}
		slices.SortFunc(chans, compareChannels)
		v.Captions = nil
		for _, ch := range chans {
			c := manifest.Caption{Channel: ch}
			if i := slices.IndexFunc(labels, func(l manifest.Caption) bool { return l.Channel == ch }); i >= 0 {
				c = labels[i]
			}
			v.Captions = append(v.Captions, c)
		}
	}
	p.CaptionsChecked = true
}

// compareChannels orders CC1–CC4 before SERVICE1–SERVICE63, each by number.
func compareChannels(a, b string) int {
	rank := func(s string) int {
		if n, err := strconv.Atoi(strings.TrimPrefix(s, "CC")); err == nil && strings.HasPrefix(s, "CC") {
			return n
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(s, "SERVICE"))
		return 100 + n
	}
	return rank(a) - rank(b)
}

// scanCaptions runs detectCaptions on every video track and keeps what it finds on the track.
func scanCaptions(videos []*inputTrack, log *slog.Logger) error {
	for _, t := range videos {
		start := time.Now()
		chans, read, err := detectCaptions(t)
		if err != nil {
			return err
		}
		t.captions = chans
		log.Debug("closed captions scanned", "file", t.in.path, "track", t.trackID, "found", chans,
			"read", read, "took", time.Since(start).Round(time.Microsecond))
	}
	return nil
}

// checkCaptionLabels validates Options.Captions: known channels, each once, languages as
// BCP 47 tags (returned canonical).
func checkCaptionLabels(in []manifest.Caption) ([]manifest.Caption, error) {
	out := slices.Clone(in)
	for i, c := range out {
		if !validChannel(c.Channel) {
			return nil, fmt.Errorf("closed captions %q: not a channel (CC1–CC4, SERVICE1–SERVICE63)", c.Channel)
		}
		if slices.ContainsFunc(out[:i], func(o manifest.Caption) bool { return o.Channel == c.Channel }) {
			return nil, fmt.Errorf("closed captions %s given twice", c.Channel)
		}
		if c.Language != "" {
			tag, err := language.Parse(c.Language)
			if err != nil {
				return nil, fmt.Errorf("closed captions %s: language %q is not a BCP 47 tag", c.Channel, c.Language)
			}
			out[i].Language = tag.String()
		}
	}
	return out, nil
}

// validChannel reports whether ch is an HLS INSTREAM-ID: CC1–CC4 or SERVICE1–SERVICE63.
func validChannel(ch string) bool {
	switch ch {
	case "CC1", "CC2", "CC3", "CC4":
		return true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(ch, "SERVICE"))
	return err == nil && n >= 1 && n <= 63 && ch == "SERVICE"+strconv.Itoa(n)
}
