package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
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
`

func runPackage(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("package", flag.ContinueOnError)
	out := fs.String("o", "", "output presentation folder (required)")
	fs.StringVar(out, "output", "", "same as -o")
	segDur := fs.Duration("segment-duration", 2*time.Second, "target segment duration; segments are cut at the first keyframe at or after it")
	single := fs.Bool("single-file", false, "write one fragmented MP4 per track with a sidx (HLS byte ranges, DASH SegmentBase)")
	langs := fs.String("lang", "", "comma-separated BCP 47 languages for the audio renditions in order, e.g. en,fr")
	quiet := fs.Bool("quiet", false, "no progress output")
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
	opt := packager.Options{
		Inputs:          inputs,
		Output:          *out,
		SegmentDuration: *segDur,
		SingleFile:      *single,
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

// oneLine keeps CLI errors to the single line the user reads.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", " ")
}
