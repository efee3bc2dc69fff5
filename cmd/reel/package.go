package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reelvideo/reel/packager"
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

Examples:
  reel package samples/ladder_720p.mp4 samples/ladder_480p.mp4 samples/ladder_360p.mp4 -o out/vod
  reel package --segment-duration 4s --single-file ladder_*.mp4 -o out/ondemand
  reel package video.mp4 audio_fra.mp4 --lang en,fr -o out/bilingual
  reel package --encrypt cbcs --key-id 0123456789abcdef0123456789abcdef \
      --key 00112233445566778899aabbccddeeff --key-uri https://keys.example/k1 \
      ladder_*.mp4 -o out/protected
  reel package --encrypt aes-128 --key 00112233445566778899aabbccddeeff \
      --key-uri https://keys.example/k1 ladder_*.mp4 -o out/hls-aes

Encryption (--encrypt cenc or cbcs): Common Encryption of every track, NAL headers, slice
headers (cbcs) and parameter sets left clear. cenc is AES-CTR; cbcs is AES-CBC with a constant
IV, one block in ten of video (1:9 pattern) and every whole block of audio. The MPD signals it
(mp4protection with cenc:default_KID, and ClearKey); with --key-uri every HLS media playlist
carries EXT-X-KEY (METHOD=SAMPLE-AES for cbcs, SAMPLE-AES-CTR for cenc, KEYFORMAT="identity")
and the master EXT-X-SESSION-KEY; without it HLS does not signal it (a warning says so). The
key never lands in OUT; serving it at the key URI is up to you.

--encrypt aes-128 is HLS whole-segment encryption (RFC 8216) for players without EME: every
media segment file is AES-128-CBC with PKCS7 padding, init segments stay clear (EXT-X-MAP before
EXT-X-KEY). It needs --key and --key-uri (no --key-id). Each segment's IV is its media sequence
number unless --iv (32 hex digits) fixes one for all, written as IV=0x… in EXT-X-KEY. DASH
cannot signal it: no manifest.mpd is written, and no I-frame playlists (an I-frame's range of a
segment encrypted whole cannot be decrypted alone). Not with --single-file.
`

func runPackage(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("package", flag.ContinueOnError)
	out := fs.String("o", "", "output presentation folder (required)")
	fs.StringVar(out, "output", "", "same as -o")
	segDur := fs.Duration("segment-duration", 2*time.Second, "target segment duration; segments are cut at the first keyframe at or after it")
	single := fs.Bool("single-file", false, "write one fragmented MP4 per track with a sidx (HLS byte ranges, DASH SegmentBase)")
	langs := fs.String("lang", "", "comma-separated BCP 47 languages for the audio renditions in order, e.g. en,fr")
	quiet := fs.Bool("quiet", false, "no progress output")
	scheme := fs.String("encrypt", "", "encrypt every track: cenc or cbcs (Common Encryption), or aes-128 (HLS whole segments, no MPD)")
	keyID := fs.String("key-id", "", "key ID for --encrypt, 32 hex digits")
	key := fs.String("key", "", "content key for --encrypt, 32 hex digits")
	keyURI := fs.String("key-uri", "", "URI of the key for HLS clients with --encrypt: EXT-X-KEY in every media playlist, EXT-X-SESSION-KEY in the master")
	iv := fs.String("iv", "", "first IV of every track for --encrypt: cenc 16 or 32 hex digits, cbcs 32 (the constant IV), aes-128 32 (every segment's); default: random per track (aes-128: the media sequence number)")
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
	}
	enc, err := encryptionFlags(*scheme, *keyID, *key, *iv, *keyURI, *single)
	if err != nil {
		// A missing or stray flag is a usage error; a bad value is bad input, as with --lang
		// (issue 15: a key of the wrong length or an unknown scheme exits 1).
		fmt.Fprintf(stderr, "reel package: %v\n", err)
		var u usageError
		if errors.As(err, &u) {
			return exitUsage
		}
		return exitFailure
	}
	if enc != nil && enc.KeyURI == "" && enc.Scheme != packager.SchemeAES128 {
		// Still a valid presentation (the MPD signals it), but HLS players would fetch
		// encrypted segments with no key tag and fail; say so once.
		fmt.Fprintln(stderr, "reel package: warning: no --key-uri: the HLS playlists do not signal the encryption (no EXT-X-KEY); play through DASH or give --key-uri")
	}
	opt := packager.Options{
		Inputs:          inputs,
		Output:          *out,
		SegmentDuration: *segDur,
		SingleFile:      *single,
		Encryption:      enc,
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
		fmt.Fprintf(stdout, "packaged %d video + %d audio renditions, %.3fs, in %s → %s\n",
			len(p.Video), len(p.Audio), p.Duration(), time.Since(start).Round(time.Millisecond), *out)
	}
	return exitOK
}

// encryptionFlags turns --encrypt, --key-id, --key, --iv and --key-uri into
// packager.Encryption (nil without --encrypt). Its errors name the flag, for the one line the
// user reads.
func encryptionFlags(scheme, keyID, key, iv, keyURI string, single bool) (*packager.Encryption, error) {
	if scheme == "" {
		if keyID != "" || key != "" || iv != "" || keyURI != "" {
			return nil, usageError("--key-id, --key, --iv and --key-uri need --encrypt cenc, cbcs or aes-128")
		}
		return nil, nil
	}
	if scheme != "cenc" && scheme != "cbcs" && scheme != packager.SchemeAES128 {
		return nil, fmt.Errorf("--encrypt %q: unknown scheme (supported: cenc, cbcs, aes-128)", scheme)
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
