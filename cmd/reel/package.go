package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager"
	"github.com/reelvideo/reel/packager/cpix"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

const packageUsage = `Usage:
  reel package [flags] INPUT.mp4... -o OUT

Packages an ABR ladder of MP4 files (progressive or fragmented; H.264, HEVC, AAC) into CMAF
segments cut at identical keyframe boundaries, described by:
  OUT/master.m3u8      HLS master playlist (media and I-frame playlists in each track folder)
  OUT/manifest.mpd     DASH static MPD
  OUT/<track>/         init.mp4 and seg_NNNNN.m4s per track (or media.mp4 with --single-file)
Audio is packaged once, from the first input that has audio, plus every audio-only input.
The output is written beside OUT and renamed into place only when complete.
OUT may be s3://BUCKET/PREFIX (S3 or an S3-compatible store; see "Object storage" below).

Examples:
  reel package samples/ladder_720p.mp4 samples/ladder_480p.mp4 samples/ladder_360p.mp4 -o out/vod
  reel package --segment-duration 4s --single-file ladder_*.mp4 -o out/ondemand
  reel package video.mp4 audio_fra.mp4 --lang en,fr -o out/bilingual
  reel package ladder_*.mp4 --sub film.fr.vtt --sub film.en.srt:sdh \
      --sub signs.ttml:lang=fr:name="Français (panneaux)":forced -o out/subtitled
  reel package captioned.mp4 --cc CC1:lang=en:name=English --cc CC3:lang=es -o out/cc
  reel package --encrypt cbcs --key-id 0123456789abcdef0123456789abcdef \
      --key 00112233445566778899aabbccddeeff --key-uri https://keys.example/k1 \
      --clearkey-license https://keys.example/clearkey ladder_*.mp4 -o out/protected
  reel package --encrypt aes-128 --key 00112233445566778899aabbccddeeff \
      --key-uri https://keys.example/k1 ladder_*.mp4 -o out/hls-aes
  reel package --cpix packager/cpix/testdata/ladder.cpix.xml ladder_*.mp4 -o out/drm
  REEL_CPIX_TOKEN=… reel package --cpix https://keys.example/cpix/title-42 ladder_*.mp4 -o out/drm

Subtitles (--sub FILE[:lang=fr][:name=Français][:default][:forced][:sdh], repeatable): WebVTT,
SRT or TTML/IMSC1 text, told by the extension (.vtt, .srt, .ttml/.xml/.dfxp) or the content.
lang is a BCP 47 tag; without it the language comes from a name like film.fr.vtt or
film.pt-BR.sdh.srt (the media players' convention), else it is left undetermined. name is the
menu label; without it the language's own name ("Français"), with " SDH" or " (forced)" after
it. default shows the track without the viewer asking (one at most); forced marks the cues
essential to the story (HLS FORCED=YES, DASH Role forced-subtitle); sdh marks subtitles for the
deaf and hard of hearing (HLS CHARACTERISTICS, DASH Role caption). Each file is cut at the
video's segment boundaries into OUT/text_<lang>/seg_NNNNN.vtt (HLS, X-TIMESTAMP-MAP MPEGTS 0:
cue times are media times) and OUT/text_<lang>_wvtt/ (CMAF wvtt for DASH; with --single-file
one media.mp4 with a sidx, while the WebVTT segments stay whole files). A cue crossing a
boundary is in both segments. Every file is parsed before anything is written: a malformed one
is reported as FILE:LINE: problem and nothing is published. Cues after the video's end are left
out with a warning. Subtitles are never encrypted.

Closed captions: CEA-608 channels (CC1–CC4) and CEA-708 services (SERVICE1–SERVICE63) carried
in the video's SEI (ATSC A/53 GA94 user data) are found by scanning every video sample's SEI and
signalled: HLS CLOSED-CAPTIONS renditions with INSTREAM-ID named by every variant (a video
without captions gets CLOSED-CAPTIONS=NONE), DASH Accessibility descriptors. --cc
CHANNEL[:lang=en][:name=English] (repeatable) labels a channel; one named but not found is
signalled anyway, with a warning.

Encryption (--encrypt cenc or cbcs): Common Encryption of every track, NAL headers, slice
headers (cbcs) and parameter sets left clear. cenc is AES-CTR; cbcs is AES-CBC with a constant
IV, one block in ten of video (1:9 pattern) and every whole block of audio. The MPD signals it
(mp4protection with cenc:default_KID, and ClearKey, with dashif:Laurl given
--clearkey-license); every HLS media playlist carries EXT-X-KEY (METHOD=SAMPLE-AES for cbcs,
SAMPLE-AES-CTR for cenc) with KEYFORMAT="org.w3.clearkey", and with --key-uri also
KEYFORMAT="identity"; the master has them as EXT-X-SESSION-KEY. Keys never land in OUT; serving
them is up to you (a key URI, a license server).

--encrypt aes-128 is HLS whole-segment encryption (RFC 8216) for players without EME: every
media segment file is AES-128-CBC with PKCS7 padding, init segments stay clear (EXT-X-MAP before
EXT-X-KEY). It needs --key and --key-uri (no --key-id). Each segment's IV is its media sequence
number unless --iv (32 hex digits) fixes one for all, written as IV=0x… in EXT-X-KEY. DASH
cannot signal it: no manifest.mpd is written, and no I-frame playlists (an I-frame's range of a
segment encrypted whole cannot be decrypted alone). Not with --single-file.

Keys from a CPIX document (--cpix FILE or https URL; DASH-IF CPIX 2.3, as key servers hand them
out): each track gets the key its usage rules name (video and audio often have their own), and
the scheme (cenc or cbcs) comes from the document's commonEncryptionScheme unless --encrypt
gives it (they must agree). Each DRM system of the document (Widevine, PlayReady, FairPlay,
ClearKey, …) is signalled: its pssh in every init segment, a ContentProtection per system in the
MPD (its ContentProtectionData as given, else cenc:pssh; a ClearKey ContentProtectionData
replaces --clearkey-license), and EXT-X-KEY/EXT-X-SESSION-KEY tags in its KEYFORMAT (the
document's HLSSignalingData as given). Key periods are for live: a document with several is
refused. From a key server the document is fetched with a bearer token read from
--cpix-token-file or from the environment variable REEL_CPIX_TOKEN, never from a flag: a flag's
value is visible to every user of the machine (ps, /proc) and lands in shell history.

Object storage (-o s3://BUCKET/PREFIX): the presentation is packaged into a temporary folder,
then uploaded to PREFIX/v-<digest>/ (a folder named by the content: segments and init sections
first, then its playlists and MPD), and last PREFIX/master.m3u8 and PREFIX/manifest.mpd,
pointing into it. Until those two are written the previous presentation's manifests stay, with
every object they name: a failed or interrupted upload leaves it playable. Older v-* folders
are kept for players still holding their manifests. Each object carries the Content-Type and
Cache-Control 'reel origin' sends (manifests --manifest-max-age, segments immutable).
Credentials, region and endpoint come from the standard AWS environment and files
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL_S3, …);
with a custom endpoint buckets are addressed path-style (REEL_S3_PATH_STYLE=false turns it off).
`

func runPackage(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("package", flag.ContinueOnError)
	out := fs.String("o", "", "output presentation folder, or s3://BUCKET/PREFIX (required)")
	fs.StringVar(out, "output", "", "same as -o")
	segDur := fs.Duration("segment-duration", 2*time.Second, "target segment duration; segments are cut at the first keyframe at or after it")
	single := fs.Bool("single-file", false, "write one fragmented MP4 per track with a sidx (HLS byte ranges, DASH SegmentBase)")
	langs := fs.String("lang", "", "comma-separated BCP 47 languages for the audio renditions in order, e.g. en,fr")
	quiet := fs.Bool("quiet", false, "no progress output")
	maxAge := fs.Duration("manifest-max-age", packager.DefaultManifestMaxAge, "with -o s3://…: Cache-Control max-age of the uploaded manifests (as reel origin's flag)")
	scheme := fs.String("encrypt", "", "encrypt every track: cenc or cbcs (Common Encryption), or aes-128 (HLS whole segments, no MPD)")
	keyID := fs.String("key-id", "", "key ID for --encrypt, 32 hex digits")
	key := fs.String("key", "", "content key for --encrypt, 32 hex digits")
	keyURI := fs.String("key-uri", "", "URI of the key for HLS clients with --encrypt: EXT-X-KEY in every media playlist, EXT-X-SESSION-KEY in the master")
	iv := fs.String("iv", "", "first IV of every track for --encrypt: cenc 16 or 32 hex digits, cbcs 32 (the constant IV), aes-128 32 (every segment's); default: random per track (aes-128: the media sequence number)")
	cpixSrc := fs.String("cpix", "", "keys and DRM signalling from a CPIX document: a file, or an https URL of a key server")
	tokenFile := fs.String("cpix-token-file", "", "file holding the bearer token for --cpix URL (else $REEL_CPIX_TOKEN; never on the command line, where ps shows it)")
	clearKeyLicense := fs.String("clearkey-license", "", "URL of a ClearKey license server, signalled in the MPD (dashif:Laurl)")
	var subs subFlags
	fs.Var(&subs, "sub", "subtitle file (WebVTT, SRT, TTML) as FILE[:lang=fr][:name=Français][:default][:forced][:sdh]; repeatable (see above)")
	var ccs ccFlags
	fs.Var(&ccs, "cc", "closed captions in the video (found by themselves) labelled as CHANNEL[:lang=en][:name=English], CHANNEL CC1–CC4 or SERVICE1–SERVICE63; repeatable (see above)")
	fs.Usage = usageFunc(fs, packageUsage)
	inputs, code, ok := parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case len(inputs) == 0:
		fmt.Fprintln(stderr, "reel package: no input files (run 'reel package -h')")
		return exitUsage
	case *out == "":
		fmt.Fprintln(stderr, "reel package: missing -o OUT (run 'reel package -h')")
		return exitUsage
	case *segDur < 100*time.Millisecond:
		fmt.Fprintln(stderr, "reel package: --segment-duration must be at least 100ms")
		return exitUsage
	case *maxAge < 0:
		fmt.Fprintln(stderr, "reel package: --manifest-max-age must not be negative")
		return exitUsage
	}
	subtitles, err := parseSubs(subs)
	var captions []manifest.Caption
	if err == nil {
		captions, err = parseCCs(ccs)
	}
	if err != nil {
		fmt.Fprintf(stderr, "reel package: %s\n", oneLine(err))
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	enc, err := encryptionFlags(*scheme, *keyID, *key, *iv, *keyURI, *single, *cpixSrc != "")
	if err == nil {
		err = cpixFlags(ctx, enc, *cpixSrc, *tokenFile, *clearKeyLicense)
	}
	if err != nil {
		// A missing or stray flag is a usage error; a bad value is bad input, as with --lang
		// (issue 15: a key of the wrong length or an unknown scheme exits 1).
		fmt.Fprintf(stderr, "reel package: %s\n", oneLine(err))
		var u usageError
		if errors.As(err, &u) {
			return exitUsage
		}
		return exitFailure
	}
	opt := packager.Options{
		Inputs:          inputs,
		Output:          *out,
		SegmentDuration: *segDur,
		SingleFile:      *single,
		Encryption:      enc,
		Subtitles:       subtitles,
		Captions:        captions,
		ManifestMaxAge:  *maxAge,
		// What the inputs say that players will not show as meant (a subtitle cue in no region,
		// cues past the video's end, a repeated cue identifier renamed): warnings on stderr.
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if *langs != "" {
		opt.Languages = strings.Split(*langs, ",")
	}
	var bar *progressbar.ProgressBar
	// Draw only onto a terminal we were given (never into a pipe, a log or a test buffer).
	if f, isFile := stderr.(*os.File); !*quiet && isFile && term.IsTerminal(int(f.Fd())) {
		bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("packaging"),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		opt.Progress = func(done, total int64) {
			bar.ChangeMax64(total)
			_ = bar.Set64(done)
		}
	}
	start := time.Now()
	p, err := packager.Package(ctx, opt)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "reel package: interrupted; nothing was published")
		} else {
			fmt.Fprintf(stderr, "reel package: %s\n", oneLine(err))
		}
		return exitFailure
	}
	if !*quiet {
		text := ""
		if len(p.Text) > 0 {
			text = fmt.Sprintf(" + %d subtitle", len(p.Text)/2) // each twice: WebVTT for HLS, wvtt or stpp for DASH
		}
		fmt.Fprintf(stdout, "packaged %d video + %d audio%s renditions, %.3fs, in %s → %s\n",
			len(p.Video), len(p.Audio), text, p.Duration(), time.Since(start).Round(time.Millisecond), *out)
	}
	return exitOK
}

// encryptionFlags turns --encrypt, --key-id, --key, --iv and --key-uri into
// packager.Encryption (nil without --encrypt or --cpix). With --cpix the keys come from the
// document (cpixFlags) and --encrypt is optional. Its errors name the flag, for the one line
// the user reads.
func encryptionFlags(scheme, keyID, key, iv, keyURI string, single, withCPIX bool) (*packager.Encryption, error) {
	if scheme == "" && !withCPIX {
		if keyID != "" || key != "" || iv != "" || keyURI != "" {
			return nil, usageError("--key-id, --key, --iv and --key-uri need --encrypt cenc, cbcs or aes-128")
		}
		return nil, nil
	}
	if scheme != "" && scheme != "cenc" && scheme != "cbcs" && scheme != packager.SchemeAES128 {
		return nil, fmt.Errorf("--encrypt %q: unknown scheme (supported: cenc, cbcs, aes-128)", scheme)
	}
	if withCPIX {
		if scheme == packager.SchemeAES128 {
			return nil, usageError("--encrypt aes-128 cannot go with --cpix (CPIX keys are for cenc and cbcs)")
		}
		if keyID != "" || key != "" || iv != "" {
			return nil, usageError("--key-id, --key and --iv cannot go with --cpix: the document gives the keys")
		}
		if strings.ContainsAny(keyURI, "\"\r\n") {
			return nil, errors.New("--key-uri: a double quote or a line break cannot go in an HLS playlist")
		}
		return &packager.Encryption{Scheme: scheme, KeyURI: keyURI}, nil
	}
	aes128 := scheme == packager.SchemeAES128
	switch {
	case aes128 && single:
		return nil, usageError("--encrypt aes-128 is not supported with --single-file")
	case aes128 && keyID != "":
		return nil, usageError("--key-id does not apply to --encrypt aes-128")
	case aes128 && keyURI == "":
		return nil, usageError("--encrypt aes-128 needs --key-uri (EXT-X-KEY is where players learn the key's address)")
	}
	hexFlag := func(name, v string, sizes ...int) ([]byte, error) {
		if v == "" {
			return nil, usageError("--encrypt needs --" + name)
		}
		b, err := hex.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("--%s: not hex", name)
		}
		if !slices.Contains(sizes, len(b)) {
			return nil, fmt.Errorf("--%s: %d hex digits, want %s", name, len(v), digits(sizes))
		}
		return b, nil
	}
	if strings.ContainsAny(keyURI, "\"\r\n") {
		return nil, errors.New("--key-uri: a double quote or a line break cannot go in an HLS playlist")
	}
	e := &packager.Encryption{Scheme: scheme, KeyURI: keyURI}
	var err error
	if !aes128 {
		if e.KeyID, err = hexFlag("key-id", keyID, 16); err != nil {
			return nil, err
		}
	}
	if e.Key, err = hexFlag("key", key, 16); err != nil {
		return nil, err
	}
	if iv != "" {
		sizes := []int{8, 16}
		if scheme == "cbcs" || aes128 {
			sizes = []int{16} // the constant IV in tenc; aes-128's IV=0x…
		}
		if e.IV, err = hexFlag("iv", iv, sizes...); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// cpixFlags loads the CPIX document of --cpix into enc, with the bearer token of
// --cpix-token-file or $REEL_CPIX_TOKEN for a URL, and sets --clearkey-license. Errors about
// the document name it (the file or the URL) and say what is wrong.
func cpixFlags(ctx context.Context, enc *packager.Encryption, src, tokenFile, clearKeyLicense string) error {
	if clearKeyLicense != "" {
		if enc == nil {
			return usageError("--clearkey-license needs --encrypt or --cpix")
		}
		if enc.Scheme == packager.SchemeAES128 {
			return usageError("--clearkey-license does not apply to --encrypt aes-128 (no MPD, no ClearKey)")
		}
		if u, err := url.Parse(clearKeyLicense); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("--clearkey-license %q: not an http(s) URL", clearKeyLicense)
		}
		enc.ClearKeyLicense = clearKeyLicense
	}
	isURL := strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://")
	if tokenFile != "" && !isURL {
		return usageError("--cpix-token-file needs --cpix with a key server's URL")
	}
	if src == "" {
		return nil
	}
	token := ""
	if isURL {
		token = strings.TrimSpace(os.Getenv("REEL_CPIX_TOKEN"))
		if tokenFile != "" {
			b, err := os.ReadFile(tokenFile)
			if err != nil {
				return fmt.Errorf("--cpix-token-file: %w", err)
			}
			if token = strings.TrimSpace(string(b)); token == "" || strings.ContainsAny(token, "\r\n") {
				return fmt.Errorf("--cpix-token-file %s: want one line holding the token", tokenFile)
			}
		}
	}
	d, err := cpix.Load(ctx, src, token, nil)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("--cpix: %w", err) // the error names the path already
		}
		return fmt.Errorf("%s: %w", src, err)
	}
	enc.CPIX, enc.CPIXName = d, src
	return nil
}

// usageError is a flag missing or given where it does not belong (exit 2, not 1).
type usageError string

func (e usageError) Error() string { return string(e) }

// digits says "32" or "16 or 32" for byte sizes.
func digits(sizes []int) string {
	s := make([]string, len(sizes))
	for i, n := range sizes {
		s[i] = strconv.Itoa(2 * n)
	}
	return strings.Join(s, " or ")
}

// oneLine keeps CLI errors to the single line the user reads.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", " ")
}
