package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// server is what serveUntilSignal runs: net/http's server (origin, admin) or the edge's own
// HTTP/1.1 server.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// listening is a server with its listener, ready to serve.
type listening struct {
	srv server
	ln  net.Listener
}

// serveUntilSignal serves every server until SIGINT/SIGTERM (then shuts them down gracefully,
// giving in-flight requests up to grace) or until one fails.
func serveUntilSignal(cmd string, stderr io.Writer, grace time.Duration, servers ...listening) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveUntilSignalCtx(ctx, cmd, stderr, grace, servers...)
}

// serveUntilSignalCtx is serveUntilSignal with the stop signal given as ctx.
func serveUntilSignalCtx(ctx context.Context, cmd string, stderr io.Writer, grace time.Duration, servers ...listening) int {
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.srv.Serve(s.ln) }()
	}
	code := exitOK
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "reel %s: %s\n", cmd, oneLine(err))
		code = exitFailure
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, s := range servers {
		if err := s.srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			fmt.Fprintf(stderr, "reel %s: shutdown: %s\n", cmd, oneLine(err))
		}
	}
	return code
}

// parseServerFlags parses a server command's flags, which take no positional arguments, and
// builds its logger at the --log-level given.
func parseServerFlags(fs *flag.FlagSet, args []string, logLevel *string, stdout, stderr io.Writer) (*slog.Logger, int, bool) {
	rest, code, ok := parseFlags(fs, args, stdout, stderr)
	if !ok {
		return nil, code, false
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "reel %s: unexpected argument %q (run 'reel %s -h')\n", fs.Name(), rest[0], fs.Name())
		return nil, exitUsage, false
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "reel %s: bad --log-level %q\n", fs.Name(), *logLevel)
		return nil, exitUsage, false
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})), 0, true
}
