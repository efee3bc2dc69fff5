package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/reelvideo/reel/edge"
	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager"
	"github.com/reelvideo/reel/packager/live"
)

const demoUsage = `Usage:
  reel demo [--samples DIR] [--dir DIR] [--listen ADDR] [--origin-listen ADDR] [--admin ADDR]

Runs the whole of Reel on this machine: packages the bundled samples as VOD (segmented and
single-file), starts a live channel looping the same ladder in real time (LL-HLS parts on),
serves both from one origin, and puts the edge cache in front. It prints the URLs to play;
Ctrl-C stops everything.

Examples:
  reel demo
  reel demo --listen 127.0.0.1:9081 --dir /tmp/reel-demo
`

// demoInputs are the bundled samples the demo packages and loops.
var demoInputs = []string{"ladder_720p.mp4", "ladder_480p.mp4", "ladder_360p.mp4", "audio_fra.mp4"}

// demoPresentation is one thing to play, as the demo lists it. Short is what `?p=` on the
// demo page may name it by (the first element of its path), beside its display Name.
type demoPresentation struct {
	Short, Name, Kind, HLS, DASH string
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	samples := fs.String("samples", "samples", "folder with the bundled sample files")
	dir := fs.String("dir", filepath.Join("out", "demo"), "where the packaged VOD, the live DVR and the cache go")
	listen := fs.String("listen", "127.0.0.1:8681", "the edge (what players use)")
	originListen := fs.String("origin-listen", "127.0.0.1:8680", "the origin (VOD and live)")
	admin := fs.String("admin", "127.0.0.1:8689", "the edge's admin API (/metrics, /stats, purge; bearer token REEL_ADMIN_TOKEN or a generated one)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	fs.Usage = usageFunc(fs, demoUsage)
	logger, code, ok := parseServerFlags(fs, args, logLevel, stdout, stderr)
	if !ok {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "reel demo: %s\n", oneLine(err))
		return exitFailure
	}
	// Every address first: one that is taken stops the demo before it packages anything or
	// prints an address that would not answer.
	lns, err := bindDemo(*originListen, *listen, *admin)
	if err != nil {
		return fail(err)
	}
	defer lns.close() // those not served yet, when the demo stops early
	var inputs []string
	for _, name := range demoInputs {
		inputs = append(inputs, filepath.Join(*samples, name))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// VOD, packaged once (again only when missing): the packager publishes atomically, so an
	// interrupted run leaves nothing half-made to be served next time.
	vodDir := filepath.Join(*dir, "vod")
	for _, v := range []struct {
		name   string
		single bool
	}{{"vod", false}, {"vod-single", true}} {
		out := filepath.Join(vodDir, v.name)
		if _, err := os.Stat(filepath.Join(out, manifest.MasterPlaylist)); err == nil {
			continue
		}
		fmt.Fprintf(stdout, "packaging %s…\n", out)
		if err := os.MkdirAll(vodDir, 0o755); err != nil {
			return fail(err)
		}
		if _, err := packager.Package(ctx, packager.Options{Inputs: inputs, Output: out, SingleFile: v.single, Logger: logger}); err != nil {
			return fail(err)
		}
	}

	// Live: the same ladder looped in real time, with LL-HLS parts.
	ch, err := live.NewChannel(live.Config{Name: "demo", Dir: filepath.Join(*dir, "live", "demo"),
		SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, NumberByClock: true, Logger: logger})
	if err != nil {
		return fail(err)
	}
	liveSrv := live.NewServer(logger)
	liveSrv.Add(ch)

	// One origin for both: /live/… from the live packager, the rest from the VOD folder.
	vod, err := packager.NewOrigin(vodDir, packager.OriginOptions{Logger: logger})
	if err != nil {
		return fail(err)
	}
	defer vod.Close()
	originMux := http.NewServeMux()
	originMux.Handle("/live/", liveSrv)
	originMux.Handle("/", vod)
	originURL := "http://" + lns.origin.Addr().String()

	cfg := edge.DefaultConfig()
	cfg.Origins = []edge.Origin{{Host: "*", URL: originURL}}
	cfg.Listen, cfg.Admin = *listen, *admin
	cfg.CacheDir = filepath.Join(*dir, "cache")
	e, err := edge.New(cfg, logger)
	if err != nil {
		return fail(err)
	}
	defer e.Close()
	base := "http://" + lns.edge.Addr().String()
	presentations := []demoPresentation{
		{"vod", "VOD", "vod", base + "/vod/master.m3u8", base + "/vod/manifest.mpd"},
		{"vod-single", "VOD, single file (byte ranges)", "vod", base + "/vod-single/master.m3u8", base + "/vod-single/manifest.mpd"},
		{"live", "Live (LL-HLS, low-latency DASH)", "live", base + "/live/demo/master.m3u8", base + "/live/demo/manifest.mpd"},
	}
	edgeMux := http.NewServeMux()
	if h := demoUI(e, presentations); h != nil {
		edgeMux.Handle("/_reel/", h)
	}
	// The health check every reel edge answers (shields are probed there), which the page's
	// /_reel/ prefix would otherwise take.
	edgeMux.Handle(edge.HealthPath, e)
	edgeMux.Handle("/", e.TrackTopObjects(e)) // the status page's "top objects"
	servers := []listening{
		{&http.Server{Handler: originMux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}, lns.origin},
		{edge.NewServer(edgeMux, cfg, logger), edge.ClientListener(lns.edge, cfg)},
	}
	var tok string
	var generated bool
	if lns.admin != nil {
		if tok, generated, err = adminToken(cfg); err != nil {
			return fail(err)
		}
		servers = append(servers, listening{&http.Server{Handler: e.AdminHandler(tok), ReadHeaderTimeout: 10 * time.Second}, lns.admin})
	}

	var wg sync.WaitGroup
	wg.Add(1)
	loopErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		if err := packager.Loop(ctx, ch, packager.LoopOptions{Inputs: inputs, Logger: logger}); err != nil && !errors.Is(err, context.Canceled) {
			loopErr <- err
			stop()
		}
	}()

	fmt.Fprintf(stdout, "\nReel demo — through the edge cache at %s\n", base)
	if demoUI(nil, nil) != nil {
		fmt.Fprintf(stdout, "  player and live status:  %s/_reel/  (?p=vod, vod-single or live)\n", base)
	}
	for _, p := range presentations {
		fmt.Fprintf(stdout, "  %-33s %s\n  %-33s %s\n", p.Name+" (HLS)", p.HLS, p.Name+" (DASH)", p.DASH)
	}
	fmt.Fprintf(stdout, "  origin (uncached):                %s\n", originURL)
	if lns.admin != nil {
		fmt.Fprintf(stdout, "  edge admin API:                   http://%s/metrics (also /stats, /purge)\n", lns.admin.Addr())
		if generated {
			fmt.Fprintf(stdout, "  admin token (set REEL_ADMIN_TOKEN to choose one): %s\n", tok)
		}
	}
	fmt.Fprintln(stdout, "Ctrl-C stops.")

	code = serveUntilSignalCtx(ctx, "demo", stderr, 5*time.Second, servers...)
	stop()
	wg.Wait()
	select {
	case err := <-loopErr:
		return fail(fmt.Errorf("live channel: %w", err))
	default:
	}
	return code
}

// demoListeners are the demo's sockets, all bound before anything else happens.
type demoListeners struct {
	origin, edge, admin net.Listener // admin is nil when turned off
}

// bindDemo binds the origin, the edge and (unless "") the admin API, or none of them.
func bindDemo(origin, edgeAddr, admin string) (*demoListeners, error) {
	l := &demoListeners{}
	var err error
	if l.origin, err = net.Listen("tcp", origin); err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	if l.edge, err = net.Listen("tcp", edgeAddr); err != nil {
		l.close()
		return nil, fmt.Errorf("edge: %w", err)
	}
	if admin != "" {
		if l.admin, err = net.Listen("tcp", admin); err != nil {
			l.close()
			return nil, fmt.Errorf("admin: %w", err)
		}
	}
	return l, nil
}

// close closes the listeners; those already served are closed by their server's shutdown,
// and closing them again is harmless.
func (l *demoListeners) close() {
	for _, ln := range []net.Listener{l.origin, l.edge, l.admin} {
		if ln != nil {
			ln.Close()
		}
	}
}

// demoUI is the page under /_reel/ (player and live status), when the build has it; nil
// otherwise. e is nil when only asking whether there is one.
var demoUI = func(e *edge.Edge, presentations []demoPresentation) http.Handler { return nil }
