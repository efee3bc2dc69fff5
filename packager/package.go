package packager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reelvideo/reel/manifest"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// Options configure one VOD packaging run.
type Options struct {
	// Inputs are MP4 files (progressive or fragmented), each a rung of the ladder and/or an
	// audio rendition.
	Inputs []string
	// Output is the presentation folder. It is written beside itself under a temporary name
	// and renamed into place only when complete. Or s3://bucket/prefix: packaged into a
	// temporary folder, then uploaded (s3publish.go), manifests last.
	Output string
	// S3 tunes the client of an s3:// Output (nil: the standard AWS environment alone).
	S3 *S3Options
	// ManifestMaxAge is the Cache-Control max-age given to the manifests uploaded to an s3://
	// Output, as `reel origin --manifest-max-age` would send it. Zero means
	// DefaultManifestMaxAge.
	ManifestMaxAge time.Duration
	// SegmentDuration is the target segment duration (default 2s). Segments are cut at the
	// first keyframe at or after it.
	SegmentDuration time.Duration
	// SingleFile writes one fragmented MP4 per track with a sidx instead of segment files.
	SingleFile bool
	// Languages label the audio renditions in order (BCP 47, e.g. "en", "fr"); an entry
	// overrides the language stored in the file. Missing entries keep the file's language.
	Languages []string
	// Encryption, when set, encrypts every track: Common Encryption (cenc, cbcs), or HLS
	// whole-segment AES-128 (segmented output only, and no MPD).
	Encryption *Encryption
	// Subtitles are sidecar text files, each packaged as a WebVTT track (HLS) and a wvtt track
	// (DASH) cut at the video's segment boundaries; never encrypted.
	Subtitles []Subtitle
	// Captions label the closed captions (CEA-608/708) that every video track's SEI is
	// scanned for: language and name by channel. A channel named here that the scan does not
	// find is signalled anyway, with a warning. Tracks without captions are signalled as such
	// (HLS CLOSED-CAPTIONS=NONE).
	Captions []manifest.Caption
	// Progress, when set, is called after every segment with media bytes done and total.
	Progress func(done, total int64)
	Logger   *slog.Logger
}

// Package packages a VOD ladder into CMAF segments with HLS and DASH manifests. Errors about an
// input are *InputError, about the output folder *OutputError. On any error nothing is left
// at opt.Output (an existing presentation there is kept as it was).
func Package(ctx context.Context, opt Options) (*manifest.Presentation, error) {
	if opt.SegmentDuration <= 0 {
		opt.SegmentDuration = 2 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(opt.Inputs) == 0 {
		return nil, errors.New("no input files")
	}
	if opt.Output == "" {
		return nil, errors.New("no output folder")
	}
	if opt.Encryption != nil {
		e := *opt.Encryption // check may fill in the scheme: leave the caller's as it was
		opt.Encryption = &e
		if err := e.check(); err != nil {
			return nil, err
		}
		if opt.SingleFile && e.Scheme == SchemeAES128 {
			// Each byte range would be encrypted on its own inside media.mp4, which would then
			// no longer be an MP4 anything but an HLS client could read.
			return nil, errors.New("aes-128 encryption is not supported with single-file output")
		}
	}
	langs, err := parseLanguages(opt.Languages)
	if err != nil {
		return nil, err
	}
	// Subtitle files are parsed before anything is written: a malformed one fails the run
	// with its file and line, and nothing is published.
	texts, err := parseSubtitles(opt.Subtitles)
	if err != nil {
		return nil, err
	}
	if opt.Captions, err = checkCaptionLabels(opt.Captions); err != nil {
		return nil, err
	}
	s3loc, toS3, err := ParseS3URL(opt.Output)
	if err != nil {
		return nil, &OutputError{Dir: opt.Output, Err: err}
	}
	if toS3 {
		// Fail before the work when the bucket can't be reached or written.
		if err := checkS3Output(ctx, s3loc, opt.S3); err != nil {
			return nil, err
		}
	} else if err := checkOutput(opt.Output); err != nil {
		return nil, err
	}

	inputs, err := openInputs(ctx, opt.Inputs)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, in := range inputs {
			in.Close()
		}
	}()
	videos, audios, err := selectTracks(inputs)
	if err != nil {
		return nil, err
	}
	for i, l := range langs {
		if i < len(audios) && l != "" {
			audios[i].language = l
		}
	}
	total, err := preflight(append(append([]*inputTrack{}, videos...), audios...))
	if err != nil {
		return nil, err
	}
	if opt.Encryption != nil {
		if err := opt.Encryption.pickKeys(append(append([]*inputTrack{}, videos...), audios...)); err != nil {
			return nil, err
		}
	}

	var tmp string
	if toS3 {
		tmp, err = os.MkdirTemp("", "reel-s3-upload-")
	} else {
		tmp, err = makeTemp(opt.Output)
	}
	if err != nil {
		return nil, err
	}
	published := false
	defer func() {
		if !published {
			os.RemoveAll(tmp)
		}
	}()

	p, err := run(ctx, tmp, videos, audios, texts, opt, total)
	if err != nil {
		return nil, err
	}
	if err := writeManifests(tmp, p); err != nil {
		return nil, &OutputError{Dir: opt.Output, Err: err}
	}
	if toS3 {
		published = false // the staging folder goes, uploaded or not
		if _, err := S3Upload(ctx, tmp, s3loc, opt.ManifestMaxAge, opt.S3, opt.Logger); err != nil {
			return nil, err
		}
	} else {
		if err := publish(tmp, opt.Output); err != nil {
			return nil, err
		}
		published = true
	}
	opt.Logger.Info("packaged", "output", opt.Output, "video", len(p.Video), "audio", len(p.Audio), "text", len(p.Text)/2,
		"duration", fmt.Sprintf("%.3fs", p.Duration()))
	return p, nil
}

// openGuarded opens an input and turns any mp4ff panic on corrupt data into an error naming
// the file (DESIGN.md: guard its known panics at the API boundary).
func openGuarded(path string) (in *inputFile, err error) {
	defer func() {
		if r := recover(); r != nil {
			in, err = nil, &InputError{File: path, Err: fmt.Errorf("corrupt MP4: %v", r)}
		}
	}()
	in, err = openInput(path)
	if err != nil {
		return nil, &InputError{File: path, Err: err}
	}
	return in, nil
}

// selectTracks picks the ladder: the first video track of each input, and audio once: from
// the first input with both video and audio, then every audio-only input (other languages).
func selectTracks(inputs []*inputFile) (videos, audios []*inputTrack, err error) {
	var ladderAudio *inputTrack
	var extraAudio []*inputTrack
	for _, in := range inputs {
		var v, a *inputTrack
		for _, t := range in.tracks {
			if t.kind == manifest.Video && v == nil {
				v = t
			}
			if t.kind == manifest.Audio && a == nil {
				a = t
			}
		}
		switch {
		case v != nil:
			videos = append(videos, v)
			if a != nil && ladderAudio == nil {
				ladderAudio = a
			}
		case a != nil:
			extraAudio = append(extraAudio, a)
		default:
			return nil, nil, &InputError{File: in.path, Err: errors.New("no video or audio track")}
		}
	}
	if len(videos) == 0 {
		return nil, nil, &InputError{File: inputs[0].path, Err: errors.New("no video track: a ladder needs at least one video rendition")}
	}
	if ladderAudio != nil {
		audios = append(audios, ladderAudio)
	}
	audios = append(audios, extraAudio...)
	return videos, audios, nil
}

// preflight walks every selected track's sample table once, before anything is written: it
// finds truncated or corrupt tables and tracks without media up front, and totals the bytes
// for progress.
func preflight(tracks []*inputTrack) (total int64, err error) {
	for _, t := range tracks {
		if err := walkSamples(t, func(s sample) { total += int64(s.size) }); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// run cuts and writes every track into tmp and returns the presentation model.
func run(ctx context.Context, tmp string, videos, audios []*inputTrack, texts []textInput, opt Options, total int64) (*manifest.Presentation, error) {
	ids := newIDs()
	var lanes []*lane
	scans := map[*lane]*captionScan{} // video lanes' closed captions, found as they are copied
	defer func() {
		for _, l := range lanes {
			l.w.close()
		}
	}()
	addLane := func(t *inputTrack) (*lane, error) {
		id := ids.forTrack(t)
		w, err := newTrackWriter(t, len(lanes), id, filepath.Join(tmp, id), opt.SingleFile, opt.Encryption)
		if err != nil {
			return nil, &OutputError{Dir: opt.Output, Err: err}
		}
		it, err := t.newIter()
		if err != nil {
			return nil, inputErr(t.in.path, err)
		}
		if err := w.writeInit(); err != nil {
			return nil, &OutputError{Dir: opt.Output, Err: err}
		}
		l := &lane{src: t, w: w, c: newCursor(it), ts: uint64(t.timescale)}
		lanes = append(lanes, l)
		return l, nil
	}
	sg := &segmenter{}
	for i, t := range videos {
		l, err := addLane(t)
		if err != nil {
			return nil, err
		}
		if s := newCaptionScan(t); s != nil {
			scans[l] = s
		}
		if i == 0 {
			sg.ref = l
		} else {
			sg.video = append(sg.video, l)
		}
	}
	for _, t := range audios {
		l, err := addLane(t)
		if err != nil {
			return nil, err
		}
		sg.audio = append(sg.audio, l)
	}
	sg.target = uint64(opt.SegmentDuration.Seconds()*float64(sg.ref.ts) + 0.5)

	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		more, err := sg.next()
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		var done int64
		for _, l := range lanes {
			if err := l.w.writeSegment(l.buf); err != nil {
				return nil, writeErr(l, opt.Output, err)
			}
			if s := scans[l]; s != nil {
				if err := s.samples(l.buf); err != nil {
					return nil, inputErr(l.src.in.path, err)
				}
			}
			done += l.w.bytes
		}
		if opt.Progress != nil {
			opt.Progress(done, total)
		}
	}

	p := &manifest.Presentation{SingleFile: opt.SingleFile}
	found := map[*manifest.Track][]string{}
	for _, l := range lanes {
		if err := l.w.finish(); err != nil {
			return nil, &OutputError{Dir: opt.Output, Err: err}
		}
		if l.w.enc != nil {
			// Each track is signalled under its own key; the presentation's Protection, which
			// says "encrypted" to its readers, is the first track's (a video track's).
			l.w.track.Protection = opt.Encryption.protection(l.w.enc.tk)
			if p.Protection == nil {
				p.Protection = l.w.track.Protection
			}
		}
		if e := opt.Encryption; e != nil && e.Scheme == SchemeAES128 && p.Protection == nil {
			p.Protection = e.protection(keyOfTrack{kid: e.KeyID}) // one key, no CENC per track
		}
		if l.w.track.Kind == manifest.Video {
			p.Video = append(p.Video, l.w.track)
			found[l.w.track] = scans[l].channels()
			if s := scans[l]; s != nil {
				opt.Logger.Debug("closed captions scanned", "track", l.w.track.ID, "found", found[l.w.track], "read", s.read, "took", s.took)
			}
		} else {
			p.Audio = append(p.Audio, l.w.track)
		}
	}
	for i, a := range p.Audio {
		a.Default = i == 0
		a.Name = audioName(a.Language, i)
	}
	sortLadder(p.Video)
	setCaptions(p, found, opt.Captions, opt.Logger)
	// Text is cut once the media's segment boundaries are fixed, and stays clear.
	if err := writeText(tmp, p, texts, opt.SingleFile, opt.Logger); err != nil {
		return nil, &OutputError{Dir: opt.Output, Err: err}
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("internal error: %w", err)
	}
	return p, nil
}

// writeErr attributes a failure while writing a segment: truncated input data is the input's
// fault, anything else the output's.
func writeErr(l *lane, out string, err error) error {
	if strings.Contains(err.Error(), "truncated") {
		return inputErr(l.src.in.path, err)
	}
	return &OutputError{Dir: out, Err: err}
}

// sortLadder orders video renditions from the highest to the lowest peak bandwidth, the order
// players and humans expect in a master playlist.
func sortLadder(v []*manifest.Track) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j].PeakBandwidth > v[j-1].PeakBandwidth; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

// writeManifests renders HLS and DASH from the one presentation model.
func writeManifests(dir string, p *manifest.Presentation) error {
	files := map[string][]byte{manifest.MasterPlaylist: p.HLSMaster()}
	for _, t := range p.Tracks() {
		files[filepath.Join(t.ID, manifest.MediaPlaylist)] = p.HLSMedia(t)
		if len(t.IFrames) > 0 {
			files[filepath.Join(t.ID, manifest.IFramePlaylist)] = p.HLSIFrames(t)
		}
	}
	// HLS lists the WebVTT text tracks; the WVTT ones are DASH's.
	for _, t := range p.TextTracks(manifest.WebVTT) {
		files[filepath.Join(t.ID, manifest.MediaPlaylist)] = p.HLSMedia(t)
	}
	// aes-128 is HLS only: no MPD at all rather than one that plays nothing.
	if p.Protection == nil || p.Protection.Scheme != SchemeAES128 {
		mpd, err := p.DASH()
		if err != nil {
			return err
		}
		files[manifest.DASHManifest] = mpd
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ids hands out folder names: video_720p, audio_en…, made unique with a numeric suffix.
type ids map[string]int

func newIDs() ids { return ids{} }

func (m ids) forTrack(t *inputTrack) string {
	base := "audio"
	if t.kind == manifest.Video {
		base = fmt.Sprintf("video_%dp", t.height)
	} else if t.language != "" {
		base = "audio_" + sanitizeID(t.language)
	}
	m[base]++
	if n := m[base]; n > 1 {
		return fmt.Sprintf("%s_%d", base, n)
	}
	return base
}

func sanitizeID(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// parseLanguages validates --lang values as BCP 47 tags and returns them in canonical form.
func parseLanguages(in []string) ([]string, error) {
	out := make([]string, len(in))
	for i, s := range in {
		if s == "" {
			continue
		}
		tag, err := language.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("language %q is not a BCP 47 tag", s)
		}
		out[i] = tag.String()
	}
	return out, nil
}

// audioName is the menu label players show: the language's own name when it is known.
func audioName(lang string, i int) string {
	if lang != "" {
		if tag, err := language.Parse(lang); err == nil {
			if n := display.Self.Name(tag); n != "" {
				return n
			}
		}
		return lang
	}
	if i == 0 {
		return "Main"
	}
	return fmt.Sprintf("Audio %d", i+1)
}
