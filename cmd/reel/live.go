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
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reelvideo/reel/edge"
	"github.com/reelvideo/reel/packager"
	"github.com/reelvideo/reel/packager/live"
)

const liveUsage = `Usage:
  reel live (--loop NAME=FILE[,FILE…] | --stdin NAME | --ingest NAME)… [--listen ADDR] [--dir DIR]

Packages live channels and serves them: HLS and LL-HLS (parts, preload hints, blocking
playlist reload, delta updates, rendition reports) and DASH (dynamic MPD, low-latency when parts
are on), with a sliding live window and a DVR window kept on disk. Each channel is served at
  /live/NAME/master.m3u8   and   /live/NAME/manifest.mpd

Sources (each names its channel):
  --loop NAME=FILES   replays MP4 files (a ladder, as 'reel package' takes it) in real time,
                      looping forever: a live channel without an encoder
  --stdin NAME        reads a fragmented MP4 stream on standard input, e.g. from
                      ffmpeg … -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof
                      -frag_duration 500000 pipe:1; the event ends with the stream
  --ingest NAME       accepts CMAF pushed over HTTP PUT/POST to --ingest-listen at
                      /ingest/NAME/… (DASH-IF live ingest; ffmpeg -f dash -method PUT);
                      an encoder that reconnects continues the channel after a discontinuity

Redundancy: a --loop channel is placed on the wall clock as if it had been playing since
--loop-epoch (default 2025-01-01T00:00:00Z): its availabilityStartTime is the epoch, segment
N is the Nth segment duration since it, and any instance started at any time, on any host,
publishes the same bytes under the same URLs (ETags included) — two of them can sit behind an
edge's origin pool (urls:) and the edge can switch mid-stream. A restart continues that
timeline (what it missed is made at once; a DVR history older than --dvr is dropped).
--loop-epoch none anchors each run at its own start instead (the restart then continues
after a discontinuity). Instances must agree on the files, --segment, --part and the epoch.
A fresh instance starts at the next segment and lists less than the others until it has run
a --window; --backfill makes that window at start, for the same playlists at once — but never
after a run with other files or settings on that channel: it would publish other bytes under
numbers already published.

Subtitles (--sub FILE[:lang=fr][:name=…][:default][:forced][:sdh], after a --loop, as 'reel
package --sub' takes them): the file loops with that channel's media, a cue at t in the file
showing at t in every loop. Text tracks (also an encoder's wvtt track with --ingest) are CMAF
wvtt on the segment grid, TRACK_wvtt/ in the MPD, and WebVTT rendered from the same segments,
TRACK/seg_N.vtt, in the master's SUBTITLES group; never encrypted, without parts.

Encryption (--encrypt cenc or cbcs): Common Encryption of every track, as 'reel package'
does, with either one key (--key-id and --key) or a key per key period derived from a secret
seed (--key-seed and --key-rotation N): key period k covers the segments numbered k·N to
(k+1)·N−1, and its key ID and key are
  KID(k) = HMAC-SHA256(seed, "reel live kid" ‖ k as 8 bytes big-endian), first 16 bytes
  key(k) = HMAC-SHA256(seed, "reel live key" ‖ k as 8 bytes big-endian), first 16 bytes
so every instance given the seed, and a restarted one, uses the same keys for the same
segments; a key server holding the seed derives them the same way. Each key period has its
own init segment (TRACK/init-K.mp4) carrying its KID, published a period ahead. HLS
playlists carry EXT-X-KEY (KEYFORMAT="org.w3.clearkey" with the KID; with --key-uri also
KEYFORMAT="identity" at that URI, "{kid}" replaced by the KID in hex) and EXT-X-MAP at the
first segment of each key period; the MPD has a Period per key period, with its
cenc:default_KID. Keys never land in --dir, a manifest or a response.

Keys from a CPIX document (--cpix FILE or URL; DASH-IF CPIX 2.3, as 'reel package' reads it;
a key server's token from --cpix-token-file or $REEL_CPIX_TOKEN): the ContentKeyPeriod with
index="k" is key period k (segments k·N to (k+1)·N−1 with --key-rotation N; periods given by
start/end times are refused: segment numbers, not the clock, pick a key); indexes must be
contiguous. Usage rules give video and audio their own keys; each key's DRM systems are
signalled as 'reel package' does (pssh in the period's init segments, ContentProtection in
its Period, EXT-X-KEY lines at its first segment). A document without periods has one key
per track type: no rotation. New channels number their segments from the clock (tenths of a
segment duration since 2025-01-01), so a key server gives periods from that number ÷ N. From
the start of each key period, if the document lacks the next one, it is re-read (the file, or
the URL re-fetched, with backoff up to 30 s); if the key has not come when the period ends, the
channel publishes nothing (the live edge stops; one log line; metric reel_live_key_missing 1)
until it comes, then resumes after a discontinuity. --encrypt is optional with --cpix (the
document's scheme, else cenc).

Examples:
  reel live --loop demo=samples/ladder_720p.mp4,samples/ladder_480p.mp4,samples/ladder_360p.mp4
  reel live --loop demo=samples/ladder_360p.mp4 --part 0 --segment 4s   # plain HLS, no parts
  reel live --loop demo=samples/ladder_360p.mp4 --sub samples/subs/ladder.fr.vtt
  reel live --loop a=samples/ladder_720p.mp4 --loop b=samples/ladder_360p.mp4 --listen 127.0.0.1:8090
  reel live --loop demo=samples/ladder_360p.mp4 --encrypt cbcs \
      --key-seed 000102030405060708090a0b0c0d0e0f --key-rotation 30
  REEL_CPIX_TOKEN=… reel live --loop demo=samples/ladder_360p.mp4 \
      --cpix https://keys.example/cpix/demo --key-rotation 30
  ffmpeg -re -i in.mp4 -c copy -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof pipe:1 | reel live --stdin news
`

// stringsFlag collects a repeated flag's values.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// loopFlag collects repeated --loop NAME=FILE[,FILE…] values.
type loopFlag []loopSource

type loopSource struct {
	name  string
	files []string
	subs  []string // --sub values given after it
}

func (l *loopFlag) String() string { return "" }

func (l *loopFlag) Set(v string) error {
	name, files, ok := strings.Cut(v, "=")
	if !ok || name == "" || files == "" {
		return errors.New("want NAME=FILE[,FILE…]")
	}
	src := loopSource{name: name}
	for f := range strings.SplitSeq(files, ",") {
		if f = strings.TrimSpace(f); f != "" {
			src.files = append(src.files, f)
		}
	}
	*l = append(*l, src)
	return nil
}

// loopSubFlag collects --sub FILE[:lang=…][:name=…][:default][:forced][:sdh] (the syntax of
// 'reel package --sub') for the --loop channel named before it.
type loopSubFlag struct{ loops *loopFlag }

func (s loopSubFlag) String() string { return "" }

func (s loopSubFlag) Set(v string) error {
	if s.loops == nil || len(*s.loops) == 0 {
		return errors.New("--sub comes after the --loop NAME=FILE whose channel it subtitles")
	}
	l := &(*s.loops)[len(*s.loops)-1]
	l.subs = append(l.subs, v)
	return nil
}

func runLive(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("live", flag.ContinueOnError)
	var loops loopFlag
	fs.Var(&loops, "loop", "a looped channel: NAME=FILE[,FILE…] (repeatable)")
	loopEpoch := fs.String("loop-epoch", "2025-01-01T00:00:00Z", "the wall-clock time --loop channels are placed as if playing since (RFC 3339), so redundant instances publish the same segments; none: each run starts its own timeline")
	backfill := fs.Bool("backfill", false, "start --loop channels with the live window before now made, so that a redundant instance lists what the others list from its start (only where every run of the channel had the same files and settings)")
	fs.Var(loopSubFlag{&loops}, "sub", "subtitles looped with the --loop channel before it: FILE[:lang=fr][:name=…][:default][:forced][:sdh] (WebVTT, SRT, TTML; repeatable)")
	stdinName := fs.String("stdin", "", "a channel NAME fed by a fragmented MP4 stream on standard input")
	var ingestNames stringsFlag
	fs.Var(&ingestNames, "ingest", "a channel NAME fed by an encoder pushing CMAF over HTTP (repeatable)")
	ingestListen := fs.String("ingest-listen", "127.0.0.1:8091", "address encoders push to (/ingest/NAME/…); REEL_INGEST_TOKEN, when set, is required as a bearer token")
	listen := fs.String("listen", "127.0.0.1:8090", "address to listen on")
	dir := fs.String("dir", filepath.Join("out", "live"), "where segments are kept (the DVR window), one folder per channel")
	segment := fs.Duration("segment", 2*time.Second, "segment target duration (segments start at keyframes)")
	part := fs.Duration("part", 500*time.Millisecond, "LL-HLS part duration; 0 turns parts off")
	window := fs.Duration("window", 30*time.Second, "how far back live playlists and MPDs reach")
	dvr := fs.Duration("dvr", 2*time.Hour, "how long segments stay on disk for players that seek back")
	admin := fs.String("admin", "127.0.0.1:9092", "admin listener: /metrics (bearer token REEL_ADMIN_TOKEN, else one is generated and printed); empty turns it off")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	var kf liveKeyFlags
	fs.StringVar(&kf.scheme, "encrypt", "", "encrypt every track with Common Encryption; scheme: cenc or cbcs")
	fs.StringVar(&kf.keyID, "key-id", "", "key ID for --encrypt with one key, 32 hex digits")
	fs.StringVar(&kf.key, "key", "", "content key for --encrypt with one key, 32 hex digits")
	fs.StringVar(&kf.seed, "key-seed", "", "secret seed for --encrypt with key rotation, at least 32 hex digits (keys derived per key period)")
	fs.Uint64Var(&kf.rotation, "key-rotation", 0, "segments per key period with --key-seed or --cpix")
	fs.StringVar(&kf.cpix, "cpix", "", "keys, key periods and DRM signalling from a CPIX document: a file, or an https URL of a key server (re-read when the channel nears its last key period)")
	fs.StringVar(&kf.tokenFile, "cpix-token-file", "", "file holding the bearer token for --cpix URL (else $REEL_CPIX_TOKEN; never on the command line, where ps shows it)")
	fs.StringVar(&kf.keyURI, "key-uri", "", "key URI for HLS clients (KEYFORMAT=\"identity\"); {kid} is replaced by the key period's KID in hex")
	fs.Usage = usageFunc(fs, liveUsage)
	logger, code, ok := parseServerFlags(fs, args, logLevel, stdout, stderr)
	if !ok {
		return code
	}
	// The signal that stops the server also interrupts the checks of looped inputs before it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	enc, err := kf.encryption(ctx, logger)
	if err != nil {
		fmt.Fprintf(stderr, "reel live: %v\n", err)
		var u usageError
		if errors.As(err, &u) {
			return exitUsage
		}
		return exitFailure
	}
	if len(loops) == 0 && *stdinName == "" && len(ingestNames) == 0 {
		fmt.Fprintln(stderr, "reel live: no channel: give --loop NAME=FILE, --stdin NAME or --ingest NAME (run 'reel live -h')")
		return exitUsage
	}
	var epoch time.Time
	if *loopEpoch != "none" {
		if epoch, err = time.Parse(time.RFC3339, *loopEpoch); err != nil || epoch.After(time.Now()) {
			fmt.Fprintf(stderr, "reel live: --loop-epoch %q: want an RFC 3339 time in the past (2025-01-01T00:00:00Z) or none\n", *loopEpoch)
			return exitUsage
		}
	}
	if *backfill && (len(loops) == 0 || epoch.IsZero()) {
		fmt.Fprintln(stderr, "reel live: --backfill makes the window of a --loop channel placed on --loop-epoch: give a --loop, and an epoch, not none")
		return exitUsage
	}
	loopSubs := make([][]packager.Subtitle, len(loops))
	for i, l := range loops {
		if loopSubs[i], err = parseSubs(l.subs); err != nil {
			fmt.Fprintf(stderr, "reel live: %v\n", err)
			return exitUsage
		}
	}
	// Subtitle files are read before any channel is made: a malformed one is refused with its
	// FILE:LINE and nothing is published.
	for i, l := range loops {
		if err := packager.CheckSubtitles(loopSubs[i]); err != nil {
			fmt.Fprintf(stderr, "reel live: channel %s: %s\n", l.name, oneLine(err))
			return exitFailure
		}
	}
	names := []string{}
	for _, l := range loops {
		names = append(names, l.name)
	}
	if *stdinName != "" {
		names = append(names, *stdinName)
	}
	names = append(names, ingestNames...)

	if enc != nil {
		if ck, ok := enc.Keys.(*live.CPIXKeys); ok {
			go ck.Run(ctx) // re-reads the document when the channels near its last key period
		}
	}
	srv := live.NewServer(logger)
	metrics := live.NewMetrics()
	var channels []*live.Channel
	for i, name := range names {
		cfg := live.Config{
			Name: name, Dir: filepath.Join(*dir, name),
			SegmentDuration: *segment, PartDuration: *part, Window: *window, DVR: *dvr, NumberByClock: true,
			Logger: logger, Metrics: metrics, Encryption: enc,
		}
		if i < len(loops) { // a looped channel: anchored at the epoch
			cfg.Epoch = epoch
		}
		ch, err := live.NewChannel(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "reel live: %s\n", oneLine(err))
			return exitFailure
		}
		if err := srv.Add(ch); err != nil {
			fmt.Fprintf(stderr, "reel live: %s\n", oneLine(err))
			return exitFailure
		}
		channels = append(channels, ch)
	}
	// Looped inputs are opened and checked before anything serves: a ladder 'reel package'
	// would refuse is refused here too, with the same one line.
	var loopers []*packager.Looper
	defer func() {
		for _, l := range loopers {
			l.Close()
		}
	}()
	for i, l := range loops {
		looper, err := packager.NewLoop(ctx, channels[i], packager.LoopOptions{Inputs: l.files, Subtitles: loopSubs[i], Logger: logger, Epoch: epoch, Backfill: *backfill})
		if err != nil {
			fmt.Fprintf(stderr, "reel live: channel %s: %s\n", l.name, oneLine(err))
			return exitFailure
		}
		loopers = append(loopers, looper)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "reel live: %s\n", oneLine(err))
		return exitFailure
	}
	servers := []listening{{&http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}, ln}}
	var ingestBase string
	if len(ingestNames) > 0 {
		// Publishing is not for viewers: encoders push to their own listener, with a token
		// when one is set.
		ing := packager.NewIngest(logger)
		ing.Metrics = metrics
		for _, ch := range channels[len(channels)-len(ingestNames):] {
			ing.Add(ch)
		}
		iln, err := net.Listen("tcp", *ingestListen)
		if err != nil {
			fmt.Fprintf(stderr, "reel live: ingest: %s\n", oneLine(err))
			return exitFailure
		}
		var h http.Handler = ing
		if tok := strings.TrimSpace(os.Getenv("REEL_INGEST_TOKEN")); tok != "" {
			h = edge.RequireBearer("reel ingest", tok, ing)
		}
		// No read timeout: an encoder may hold one chunked request open for a whole segment.
		servers = append(servers, listening{&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}, iln})
		ingestBase = "http://" + iln.Addr().String()
	}

	var adminBase, adminTok string
	var tokenGenerated bool
	if *admin != "" {
		tok, generated, err := adminToken(edge.Config{})
		if err != nil {
			fmt.Fprintf(stderr, "reel live: %s\n", oneLine(err))
			return exitFailure
		}
		aln, err := net.Listen("tcp", *admin)
		if err != nil {
			fmt.Fprintf(stderr, "reel live: admin: %s\n", oneLine(err))
			return exitFailure
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
		mux.Handle("GET /metrics", edge.RequireBearer("reel live", tok, metrics.Handler()))
		servers = append(servers, listening{&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, aln})
		adminBase, adminTok, tokenGenerated = "http://"+aln.Addr().String(), tok, generated
	}

	// Sources run until the signal that stops the server; a source failing stops everything
	// (a channel that silently stopped advancing would be worse).
	var wg sync.WaitGroup
	srcErr := make(chan error, len(names))
	for i, l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loopers[i].Run(ctx); err != nil {
				srcErr <- fmt.Errorf("channel %s: %w", l.name, err)
				stop()
			}
		}()
	}
	if *stdinName != "" {
		// The stream's end ends the event (ENDLIST, static MPD); the server keeps serving it
		// until stopped, so players and the DVR can still reach it.
		go func() {
			if err := packager.ReadStream(ctx, os.Stdin, channels[len(loops)], packager.StreamOptions{Name: "stdin", Logger: logger}); err != nil {
				fmt.Fprintf(stderr, "reel live: channel %s: %s\n", *stdinName, oneLine(err))
			}
		}()
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "reel live serving at %s\n", base)
	for _, name := range names {
		fmt.Fprintf(stdout, "  %s/live/%s/master.m3u8  %s/live/%s/manifest.mpd\n", base, name, base, name)
	}
	for _, name := range ingestNames {
		fmt.Fprintf(stdout, "  encoders push %s to %s%s%s/\n", name, ingestBase, packager.IngestPath, name)
	}
	if adminBase != "" {
		fmt.Fprintf(stdout, "metrics at %s/metrics\n", adminBase)
		if tokenGenerated {
			fmt.Fprintf(stdout, "admin token (set REEL_ADMIN_TOKEN to choose one): %s\n", adminTok)
		}
	}
	code = serveUntilSignalCtx(ctx, "live", stderr, 5*time.Second, servers...)
	stop()
	wg.Wait()
	select {
	case err := <-srcErr:
		fmt.Fprintf(stderr, "reel live: %s\n", oneLine(err))
		return exitFailure
	default:
	}
	return code
}

// liveKeyFlags are reel live's encryption flags.
type liveKeyFlags struct {
	scheme, keyID, key, seed, keyURI string
	cpix, tokenFile                  string
	rotation                         uint64
}

// encryption turns the flags into the channels' encryption (nil without --encrypt or --cpix).
// As with 'reel package', a flag missing or out of place is a usage error (exit 2) and a bad
// value bad input (exit 1); either way one line names the flag, or the CPIX document.
func (f liveKeyFlags) encryption(ctx context.Context, logger *slog.Logger) (*live.Encryption, error) {
	if f.cpix != "" || f.tokenFile != "" {
		return f.cpixEncryption(ctx, logger)
	}
	fixed := f.keyID != "" || f.key != ""
	seeded := f.seed != "" || f.rotation != 0
	switch {
	case f.scheme == "":
		if fixed || seeded || f.keyURI != "" {
			return nil, usageError("--key-id, --key, --key-seed, --key-rotation and --key-uri need --encrypt cenc or cbcs")
		}
		return nil, nil
	case f.scheme != "cenc" && f.scheme != "cbcs":
		return nil, fmt.Errorf("--encrypt %q: unknown scheme (supported: cenc, cbcs)", f.scheme)
	case fixed && seeded:
		return nil, usageError("--encrypt takes either --key-id and --key (one key) or --key-seed and --key-rotation (key rotation), not both")
	case !fixed && !seeded:
		return nil, usageError("--encrypt needs --key-id and --key, or --key-seed and --key-rotation")
	case fixed && (f.keyID == "" || f.key == ""):
		return nil, usageError("--encrypt with one key needs both --key-id and --key")
	case seeded && f.seed == "":
		return nil, usageError("--key-rotation needs --key-seed")
	case seeded && f.rotation == 0:
		return nil, usageError("--key-seed needs --key-rotation N (segments per key period, at least 1)")
	case strings.ContainsAny(f.keyURI, "\"\r\n"):
		return nil, errors.New("--key-uri: a double quote or a line break cannot go in an HLS playlist")
	}
	hexFlag := func(name, v string, min, max int) ([]byte, error) {
		b, err := hex.DecodeString(v)
		switch {
		case err != nil:
			return nil, fmt.Errorf("--%s: not hex", name)
		case min == max && len(b) != min:
			return nil, fmt.Errorf("--%s: %d hex digits, want %d", name, len(v), 2*min)
		case len(b) < min || len(b) > max:
			return nil, fmt.Errorf("--%s: %d hex digits, want %d to %d", name, len(v), 2*min, 2*max)
		}
		return b, nil
	}
	var keys live.KeySource
	if fixed {
		id, err := hexFlag("key-id", f.keyID, 16, 16)
		if err != nil {
			return nil, err
		}
		key, err := hexFlag("key", f.key, 16, 16)
		if err != nil {
			return nil, err
		}
		var k live.Key
		copy(k.ID[:], id)
		copy(k.Value[:], key)
		keys = live.FixedKey(k)
	} else {
		seed, err := hexFlag("key-seed", f.seed, 16, 64)
		if err != nil {
			return nil, err
		}
		keys = live.SeedKeys{Seed: seed, Rotation: f.rotation}
	}
	prot, err := packager.NewLiveProtector(f.scheme)
	if err != nil {
		return nil, err
	}
	return &live.Encryption{Scheme: f.scheme, Keys: keys, KeyURI: f.keyURI, Protector: prot}, nil
}

// cpixEncryption is encryption with keys from --cpix: key periods of --key-rotation segments
// by the document's ContentKeyPeriod@index, or one key per track type for the channel's life
// when it has no periods. The scheme is --encrypt's, else the document's, else cenc.
func (f liveKeyFlags) cpixEncryption(ctx context.Context, logger *slog.Logger) (*live.Encryption, error) {
	isURL := strings.HasPrefix(f.cpix, "https://") || strings.HasPrefix(f.cpix, "http://")
	switch {
	case f.cpix == "":
		return nil, usageError("--cpix-token-file needs --cpix with a key server's URL")
	case f.keyID != "" || f.key != "" || f.seed != "":
		return nil, usageError("--key-id, --key and --key-seed cannot go with --cpix: the document gives the keys")
	case f.tokenFile != "" && !isURL:
		return nil, usageError("--cpix-token-file needs --cpix with a key server's URL")
	case f.scheme != "" && f.scheme != "cenc" && f.scheme != "cbcs":
		return nil, fmt.Errorf("--encrypt %q: unknown scheme (supported: cenc, cbcs)", f.scheme)
	case strings.ContainsAny(f.keyURI, "\"\r\n"):
		return nil, errors.New("--key-uri: a double quote or a line break cannot go in an HLS playlist")
	}
	token := ""
	if isURL {
		token = strings.TrimSpace(os.Getenv("REEL_CPIX_TOKEN"))
		if f.tokenFile != "" {
			b, err := os.ReadFile(f.tokenFile)
			if err != nil {
				return nil, fmt.Errorf("--cpix-token-file: %w", err)
			}
			if token = strings.TrimSpace(string(b)); token == "" || strings.ContainsAny(token, "\r\n") {
				return nil, fmt.Errorf("--cpix-token-file %s: want one line holding the token", f.tokenFile)
			}
		}
	}
	keys, err := live.LoadCPIXKeys(ctx, f.cpix, token, f.rotation, logger)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("--cpix: %w", err) // the error names the path already
		}
		return nil, fmt.Errorf("%s: %w", f.cpix, err)
	}
	scheme := f.scheme
	switch {
	case scheme == "" && keys.Scheme != "":
		scheme = keys.Scheme
	case scheme == "":
		scheme = "cenc"
	case keys.Scheme != "" && keys.Scheme != scheme:
		return nil, fmt.Errorf("%s: its keys ask for %s, --encrypt for %s", f.cpix, keys.Scheme, scheme)
	}
	prot, err := packager.NewLiveProtector(scheme)
	if err != nil {
		return nil, err
	}
	return &live.Encryption{Scheme: scheme, Keys: keys, KeyURI: f.keyURI, Protector: prot}, nil
}
