package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/reelvideo/reel/edge/h1"
	"github.com/reelvideo/reel/edge/h2"
	"github.com/reelvideo/reel/edge/tlscert"
)

// Frontend serves one handler to clients at one address over every protocol the
// configuration turns on, with one cache behind them all:
//
//   - HTTP/1.1 through the edge's own server (edge/h1), plain or over TLS;
//   - HTTP/2 (RFC 9113) over TLS when ALPN picks "h2", or over a plain connection that opens
//     with the HTTP/2 preface (h2c, prior knowledge), when configured: edge/h1 accepts every
//     TCP connection and hands these to the edge's HTTP/2 server (edge/h2), or with
//     http2.server: x to golang.org/x/net/http2's;
//   - HTTP/3 (RFC 9114) through quic-go on UDP at the TCP listener's port, advertised on every
//     TCP response with Alt-Svc (RFC 7838).
//
// edge/h2's package comment says why the edge has its own HTTP/2 server. Why x/net/http2, as
// the fallback, rather than net/http's bundled copy: it serves a connection we accepted
// (Server.ServeConn), where net/http's copy is reachable only through an http.Server that
// owns the accept loop — ours is edge/h1's, which must see every connection first to keep
// HTTP/1.1 on its own fast path. It is the same code (net/http bundles it), pinned in go.mod
// rather than moving with the toolchain, and exposes the limits we set (streams, frame size,
// idle and write timeouts, header list size through the base http.Server).
type Frontend struct {
	log     *slog.Logger
	handler http.Handler
	h2cfg   HTTP2
	tlsCfg  TLS
	maxHdr  int

	writeTimeout  time.Duration // limits.client_write_timeout
	notsentLowat  int           // limits.client_notsent_lowat (sockopt.go)
	writeTimedOut func()        // counts it (nil: not counted)

	h1      *h1.Server
	h2r     *h2.Server    // the edge's HTTP/2 server (http2.server: reel), else nil
	h2      *http2.Server // x/net's (http2.server: x), else nil
	h2base  *http.Server  // x/net's settings source and graceful-shutdown hook; never serves
	h2h     http.Handler  // the handler HTTP/2 streams run (the Alt-Svc wrapper with HTTP/3)
	h3      *http3.Server // nil until ListenHTTP3
	udp     net.PacketConn
	certs   *tlscert.Store
	tlsConf *tls.Config
	caFile  string
	altSvc  string
	tcpAddr net.Addr

	mu        sync.Mutex
	stopWatch context.CancelFunc // ends the certificates' reload loop
	stopped   bool
}

// NewFrontend prepares the servers for cfg (TLS certificates loaded, a self-signed pair made
// when configured); Listen and Serve start them.
func NewFrontend(h http.Handler, cfg Config, log *slog.Logger) (*Frontend, error) {
	if err := cfg.validateProtocols(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Frontend{log: log, handler: h, h2cfg: cfg.HTTP2.withDefaults(), tlsCfg: cfg.TLS, maxHdr: int(cfg.Limits.MaxHeaderBytes),
		writeTimeout: cfg.Limits.ClientWriteTimeout, notsentLowat: int(cfg.Limits.ClientNotsentLowat)}
	if e, ok := h.(*Edge); ok {
		f.writeTimedOut = func() { e.m.limitHit(h1.LimitWrite) }
	}
	if f.tlsCfg.AltSvcMaxAge == 0 {
		f.tlsCfg.AltSvcMaxAge = defaultAltSvcMaxAge
	}
	var err error
	if f.certs, f.caFile, err = cfg.TLS.certificates(); err != nil {
		return nil, err
	}
	f.h1 = NewServer(h, cfg, log)
	h2OverTLS := f.certs != nil && !cfg.HTTP2.Off
	if (h2OverTLS || cfg.HTTP2.H2C) && f.h2cfg.Server == H2ServerReel {
		c := f.h2cfg
		f.h2r = &h2.Server{
			Handler:              h,
			MaxConcurrentStreams: c.MaxConcurrentStreams,
			MaxReadFrameSize:     uint32(c.MaxReadFrameSize),
			MaxHeaderBytes:       f.maxHdr,
			IdleTimeout:          c.IdleTimeout,
			WriteTimeout:         cfg.Limits.ClientWriteTimeout,
			OnWriteTimeout:       f.writeTimedOut,
			Log:                  log,
		}
		f.h1.NextProto = map[string]func(net.Conn){}
		if h2OverTLS {
			f.h1.NextProto[http2.NextProtoTLS] = f.serveH2
		} else {
			f.h1.NextProto["h2c"] = f.serveH2
		}
	} else if h2OverTLS || cfg.HTTP2.H2C {
		c := f.h2cfg
		f.h2 = &http2.Server{
			MaxConcurrentStreams: c.MaxConcurrentStreams,
			MaxReadFrameSize:     uint32(c.MaxReadFrameSize),
			IdleTimeout:          c.IdleTimeout,
			// A client that stops reading while we have bytes for it holds a handler and its
			// buffers: give up on it as on a stalled HTTP/1.1 write.
			WriteByteTimeout: cfg.Limits.ClientWriteTimeout,
			CountError: func(kind string) {
				log.Debug("http2: protocol error", "kind", kind)
			},
		}
		// The header list limit (SETTINGS_MAX_HEADER_LIST_SIZE, RFC 9113 §6.5.2) comes from
		// MaxHeaderBytes, as for HTTP/1.1: a larger header block gets 431 on its stream.
		f.h2base = &http.Server{
			MaxHeaderBytes: f.maxHdr,
			ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
		// ConfigureServer registers the hook with which h2base.Shutdown sends GOAWAY on
		// every connection served with it as BaseConfig.
		if err := http2.ConfigureServer(f.h2base, f.h2); err != nil {
			return nil, fmt.Errorf("http2: %w", err)
		}
		f.h2h = h
		f.h1.NextProto = map[string]func(net.Conn){}
		if h2OverTLS {
			f.h1.NextProto[http2.NextProtoTLS] = f.serveH2
		} else {
			f.h1.NextProto["h2c"] = f.serveH2
		}
	}
	if f.certs != nil {
		if h2OverTLS {
			f.tlsConf = f.certs.Config(http2.NextProtoTLS, "http/1.1")
		} else {
			f.tlsConf = f.certs.Config("http/1.1")
		}
	}
	return f, nil
}

// serveH2 serves one HTTP/2 connection handed over by edge/h1, until it ends.
func (f *Frontend) serveH2(c net.Conn) {
	if f.h2r != nil {
		f.h2r.ServeConn(limitResets(c, f.h2cfg.ResetRate, f.h2cfg.ResetBurst, f.log))
		return
	}
	f.h2.ServeConn(limitResets(c, f.h2cfg.ResetRate, f.h2cfg.ResetBurst, f.log), &http2.ServeConnOpts{
		BaseConfig: f.h2base,
		Handler:    f.h2h,
	})
}

// Listen binds addr over TCP and, with HTTP/3 configured, the same address and port over
// UDP (for port 0, the port TCP got). The TCP listener is for Serve.
func (f *Frontend) Listen(addr string) (net.Listener, error) {
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		if !f.tlsCfg.HTTP3 {
			f.tcpAddr = ln.Addr()
			return ln, nil
		}
		err = f.ListenHTTP3(ln.Addr())
		if err == nil {
			f.tcpAddr = ln.Addr()
			return ln, nil
		}
		ln.Close()
		// Port 0: the UDP port of the number TCP got may be taken; try another number.
		if _, port, _ := net.SplitHostPort(addr); port != "0" || attempt == 4 {
			return nil, err
		}
	}
}

// ListenHTTP3 binds UDP at the TCP listener's address tcp for HTTP/3 and starts advertising it
// (Listen calls it when the configuration asks for HTTP/3). It must come before Serve.
func (f *Frontend) ListenHTTP3(tcp net.Addr) error {
	if f.tlsConf == nil {
		return errors.New("http3 needs TLS certificates")
	}
	ta, ok := tcp.(*net.TCPAddr)
	if !ok {
		return fmt.Errorf("http3: %v is not a TCP address", tcp)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ta.IP, Port: ta.Port, Zone: ta.Zone})
	if err != nil {
		return fmt.Errorf("http3: %w", err)
	}
	f.udp = udp
	f.h3 = &http3.Server{
		Handler:        h3Writes{h: f.handler, timeout: f.writeTimeout, expired: f.writeTimedOut},
		TLSConfig:      f.tlsConf, // Serve sets its ALPN to h3
		MaxHeaderBytes: f.maxHdr,
		IdleTimeout:    f.h2cfg.IdleTimeout,
		QUICConfig: &quic.Config{
			// The same bound on concurrent requests per connection as HTTP/2's.
			MaxIncomingStreams: int64(f.h2cfg.MaxConcurrentStreams),
			MaxIdleTimeout:     f.h2cfg.IdleTimeout,
			// No 0-RTT: early data can be replayed (RFC 9001 §9.2), and unsafe methods go
			// through to origins.
			Allow0RTT: false,
		},
		Logger: f.log,
	}
	// Alt-Svc (RFC 7838 §3): h3 at this port, remembered for ma seconds. http3.Server's
	// SetQUICHeaders makes the same value but only once Serve has registered its listener;
	// the value is fixed, so it is made here, once, and written by the servers from then on.
	f.altSvc = `h3=":` + strconv.Itoa(ta.Port) + `"; ma=` + strconv.FormatInt(int64(f.tlsCfg.AltSvcMaxAge/time.Second), 10)
	f.h1.ResponseFields = []byte("Alt-Svc: " + f.altSvc + "\r\n")
	if f.h2 != nil {
		f.h2h = altSvcHandler{h: f.handler, v: []string{f.altSvc}}
	}
	if f.h2r != nil {
		f.h2r.ResponseFields = [][2]string{{"alt-svc", f.altSvc}}
	}
	return nil
}

// altSvcHandler adds Alt-Svc to HTTP/2 responses (edge/h1 writes it for HTTP/1.1 itself).
type altSvcHandler struct {
	h http.Handler
	v []string
}

func (a altSvcHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header()["Alt-Svc"] = a.v
	a.h.ServeHTTP(w, r)
}

// AltSvc is the Alt-Svc value TCP responses carry ("" without HTTP/3).
func (f *Frontend) AltSvc() string { return f.altSvc }

// CAFile is the development CA clients should trust with tls.self_signed, else "".
func (f *Frontend) CAFile() string { return f.caFile }

// Describe says what is served where, one line per listener, once Listen has run.
func (f *Frontend) Describe() []string {
	var protos []string
	switch {
	case f.certs != nil && (f.h2 != nil || f.h2r != nil):
		protos = []string{"HTTP/1.1 and HTTP/2 over TLS"}
	case f.certs != nil:
		protos = []string{"HTTP/1.1 over TLS"}
	case f.h2 != nil || f.h2r != nil:
		protos = []string{"HTTP/1.1 and HTTP/2 (h2c, prior knowledge)"}
	default:
		protos = []string{"HTTP/1.1"}
	}
	lines := []string{fmt.Sprintf("%s on tcp %s", protos[0], f.tcpAddr)}
	if f.udp != nil {
		lines = append(lines, fmt.Sprintf("HTTP/3 on udp %s (Alt-Svc: %s)", f.udp.LocalAddr(), f.altSvc))
	}
	return lines
}

// Scheme is "https" with TLS, else "http".
func (f *Frontend) Scheme() string {
	if f.certs != nil {
		return "https"
	}
	return "http"
}

// Serve serves ln (from Listen: TLS is added here) and the HTTP/3 socket until Shutdown or
// Close (then http.ErrServerClosed) or until one of them fails.
func (f *Frontend) Serve(ln net.Listener) error {
	if f.tcpAddr == nil {
		f.tcpAddr = ln.Addr()
	}
	ln = clientListener{Listener: ln, notsentLowat: f.notsentLowat}
	if f.certs != nil {
		f.mu.Lock()
		if f.stopWatch == nil && !f.stopped {
			ctx, cancel := context.WithCancel(context.Background())
			f.stopWatch = cancel
			go f.certs.Watch(ctx, 30*time.Second, f.log)
		}
		f.mu.Unlock()
		ln = tls.NewListener(ln, f.tlsConf)
	}
	errc := make(chan error, 2)
	go func() { errc <- f.h1.Serve(ln) }()
	if f.h3 != nil {
		go func() { errc <- f.h3.Serve(f.udp) }()
	}
	err := <-errc
	if !errors.Is(err, http.ErrServerClosed) {
		f.Close()
	}
	return err
}

// Shutdown stops accepting, tells HTTP/2 and HTTP/3 clients to go away (GOAWAY) and closes
// idle HTTP/1.1 connections, lets requests in flight finish, and returns when every
// connection is gone or ctx ends.
func (f *Frontend) Shutdown(ctx context.Context) error {
	var h3err error
	var wg sync.WaitGroup
	if f.h3 != nil {
		wg.Go(func() {
			if h3err = f.h3.Shutdown(ctx); errors.Is(h3err, context.DeadlineExceeded) {
				h3err = nil // what was left was closed; the TCP side reports the deadline
			}
		})
	}
	h1done := make(chan error, 1)
	go func() { h1done <- f.h1.Shutdown(ctx) }()
	var err error
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
wait:
	for {
		if f.h2base != nil {
			// GOAWAY to every HTTP/2 connection: again on each tick, for the ones whose
			// handshake was still under way at the first call (a connection gets it once).
			f.h2base.Shutdown(context.Background())
		}
		if f.h2r != nil {
			f.h2r.Shutdown() // from now on every connection, new ones included, gets GOAWAY
		}
		select {
		case err = <-h1done:
			break wait
		case <-t.C:
		}
	}
	wg.Wait()
	f.stop()
	return errors.Join(err, h3err)
}

// Close closes every listener and connection at once.
func (f *Frontend) Close() error {
	err := f.h1.Close()
	if f.h3 != nil {
		err = errors.Join(err, f.h3.Close())
	}
	f.stop()
	return err
}

func (f *Frontend) stop() {
	if f.udp != nil {
		f.udp.Close()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	if f.stopWatch != nil {
		f.stopWatch()
	}
}
