package edge

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawH2 is a client connection driven frame by frame with x/net's Framer, to send what a
// well-behaved client never would.
type rawH2 struct {
	conn     net.Conn
	fr       *http2.Framer
	scheme   string
	settings map[http2.SettingID]uint32 // the server's initial SETTINGS
	wmu      sync.Mutex
}

// dialH2 opens an HTTP/2 connection to the edge, over TLS (ALPN h2) or cleartext (h2c prior
// knowledge), and exchanges the prefaces and SETTINGS (RFC 9113 §3.4).
func dialH2(t *testing.T, fe *frontEdge, overTLS bool) *rawH2 {
	t.Helper()
	h := &rawH2{scheme: "http", settings: map[http2.SettingID]uint32{}}
	var err error
	if overTLS {
		cfg := fe.tlsConfig()
		cfg.NextProtos = []string{"h2"}
		var tc *tls.Conn
		tc, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fe.addr, cfg)
		if err == nil && tc.ConnectionState().NegotiatedProtocol != "h2" {
			t.Fatalf("ALPN chose %q", tc.ConnectionState().NegotiatedProtocol)
		}
		h.conn, h.scheme = tc, "https"
	} else {
		h.conn, err = net.DialTimeout("tcp", fe.addr, 5*time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.conn.Close() })
	h.fr = http2.NewFramer(h.conn, h.conn)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := io.WriteString(h.conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	h.fr.WriteSettings()
	for {
		sf, ok := h.read(t).(*http2.SettingsFrame)
		if !ok || sf.IsAck() {
			continue
		}
		sf.ForeachSetting(func(s http2.Setting) error { h.settings[s.ID] = s.Val; return nil })
		h.fr.WriteSettingsAck()
		return h
	}
}

// read returns the next frame, failing the test on a timeout or error.
func (h *rawH2) read(t *testing.T) http2.Frame {
	t.Helper()
	h.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := h.fr.ReadFrame()
	if err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return f
}

// readUntilGoAway reads frames until GOAWAY and then the connection's end, and returns the
// GOAWAY (nil if the connection ended without one) and the frames counted by type.
func (h *rawH2) readUntilGoAway(t *testing.T, within time.Duration) (*http2.GoAwayFrame, map[http2.FrameType]int) {
	t.Helper()
	seen := map[http2.FrameType]int{}
	var ga *http2.GoAwayFrame
	deadline := time.Now().Add(within)
	h.conn.SetReadDeadline(deadline)
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open %v later (GOAWAY %v, frames %v)", within, ga, seen)
			}
			return ga, seen
		}
		seen[f.Header().Type]++
		if g, ok := f.(*http2.GoAwayFrame); ok && ga == nil {
			ga = g
		}
	}
}

// headerBlock encodes a GET of path and extra fields.
func (h *rawH2) headerBlock(path string, extra ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", h.scheme}, {":authority", "localhost"}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return buf.Bytes()
}

// request sends a GET on stream id (END_STREAM, END_HEADERS).
func (h *rawH2) request(t *testing.T, id uint32, path string, extra []string) {
	t.Helper()
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.headerBlock(path, extra...),
		EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
}

// concurrency tracks how many handlers run at once.
type concurrency struct {
	now, max, total atomic.Int64
	hold            time.Duration // each handler first waits this long, whatever its context
}

func (c *concurrency) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := c.now.Add(1)
		c.total.Add(1)
		for m := c.max.Load(); n > m && !c.max.CompareAndSwap(m, n); m = c.max.Load() {
		}
		defer c.now.Add(-1)
		time.Sleep(c.hold)
		h.ServeHTTP(w, r)
	})
}

// TestH2Settings: what the edge advertises by default (RFC 9113 §6.5.2) — the limits the
// abuse tests below lean on.
func TestH2Settings(t *testing.T) {
	o := newProtoOrigin(t)
	fe := startFrontend(t, o.URL, nil, nil)
	h := dialH2(t, fe, true)
	want := map[http2.SettingID]uint32{
		http2.SettingMaxConcurrentStreams: 250,
		http2.SettingMaxFrameSize:         64 << 10,
		// limits.max_header_bytes, padded as x/net pads it for HPACK's 32 bytes per field.
		http2.SettingMaxHeaderListSize: 64<<10 + 320,
	}
	for id, v := range want {
		if h.settings[id] != v {
			t.Errorf("%v = %d, want %d", id, h.settings[id], v)
		}
	}
}

// TestH2Abuse: the known HTTP/2 attacks, over TLS and over h2c, each answered as documented
// (RFC 9113 §5.4.1: a connection error is a GOAWAY with its code, then the connection closes;
// §5.4.2: a stream error is a RST_STREAM), without the edge running handlers unboundedly.
func TestH2Abuse(t *testing.T) {
	for _, overTLS := range []bool{true, false} {
		name := "tls"
		if !overTLS {
			name = "h2c"
		}
		t.Run(name, func(t *testing.T) { testH2Abuse(t, overTLS) })
	}
}

func testH2Abuse(t *testing.T, overTLS bool) {
	o := newProtoOrigin(t)
	start := func(t *testing.T, change func(*Config), c *concurrency) *frontEdge {
		return startFrontend(t, o.URL, func(cfg *Config) {
			if !overTLS {
				cfg.TLS = TLS{}
				cfg.HTTP2.H2C = true
			}
			cfg.Limits.MaxHeaderBytes = 8 << 10
			if change != nil {
				change(cfg)
			}
		}, c.wrap)
	}
	// rapidReset sends HEADERS and RST_STREAM(CANCEL) for up to n streams (CVE-2023-44487),
	// until the server stops reading.
	rapidReset := func(h *rawH2, path string, first uint32, n int) {
		go func() {
			block := h.headerBlock(path)
			for i := 0; i < n; i++ {
				id := first + uint32(2*i)
				h.wmu.Lock()
				err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true})
				if err == nil {
					err = h.fr.WriteRSTStream(id, http2.ErrCodeCancel)
				}
				h.wmu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}

	t.Run("rapid reset of hits", func(t *testing.T) {
		// Hits return at once, so x/net's bound on waiting handlers never trips: the reset
		// rate limit (http2.reset_rate, reset_burst) does.
		c := &concurrency{}
		fe := start(t, nil, c)
		h := dialH2(t, fe, overTLS)
		h.request(t, 1, "/rr/obj", nil)
		const n = 20000
		rapidReset(h, "/rr/obj", 3, n)
		ga, _ := h.readUntilGoAway(t, 10*time.Second)
		if ga == nil || ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
			t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", goAwayString(ga))
		}
		if got := c.total.Load(); got > n/4 {
			t.Errorf("%d handlers ran for %d reset streams", got, n)
		}
		if c.max.Load() > 250 {
			t.Errorf("%d handlers at once, more than max_concurrent_streams", c.max.Load())
		}
	})

	t.Run("rapid reset of slow handlers", func(t *testing.T) {
		// Handlers that outlive their reset stream fill the connection's handler slots
		// (max_concurrent_streams); x/net queues the next streams and sends GOAWAY when 4×
		// that many wait. The rate limit is off here to show that bound alone.
		c := &concurrency{hold: 100 * time.Millisecond}
		fe := start(t, func(cfg *Config) {
			cfg.HTTP2.MaxConcurrentStreams = 10
			cfg.HTTP2.ResetBurst = 1 << 30
		}, c)
		h := dialH2(t, fe, overTLS)
		rapidReset(h, "/rr/obj", 1, 5000)
		ga, _ := h.readUntilGoAway(t, 10*time.Second)
		if ga == nil || ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
			t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", goAwayString(ga))
		}
		if c.max.Load() > 10 {
			t.Errorf("%d handlers at once, max_concurrent_streams is 10", c.max.Load())
		}
	})

	t.Run("too many streams", func(t *testing.T) {
		// RFC 9113 §5.1.2: a stream beyond SETTINGS_MAX_CONCURRENT_STREAMS is a stream error
		// (PROTOCOL_ERROR or REFUSED_STREAM); the others go on. The streams wait on one
		// slow fill, so they are all open at once.
		c := &concurrency{}
		fe := start(t, func(cfg *Config) { cfg.HTTP2.MaxConcurrentStreams = 20 }, c)
		h := dialH2(t, fe, overTLS)
		for i := range 21 {
			h.request(t, uint32(2*i+1), "/many/slow", nil)
		}
		var reset *http2.RSTStreamFrame
		ended := map[uint32]bool{}
		for len(ended) < 20 {
			switch f := h.read(t).(type) {
			case *http2.RSTStreamFrame:
				reset = f
			case *http2.DataFrame:
				if f.StreamEnded() {
					ended[f.StreamID] = true
				}
				if n := uint32(len(f.Data())); n > 0 {
					h.fr.WriteWindowUpdate(0, n)
					h.fr.WriteWindowUpdate(f.StreamID, n)
				}
			case *http2.GoAwayFrame:
				t.Fatalf("GOAWAY %v: the connection should survive", f.ErrCode)
			}
		}
		if reset == nil || reset.StreamID != 41 || (reset.ErrCode != http2.ErrCodeProtocol && reset.ErrCode != http2.ErrCodeRefusedStream) {
			t.Fatalf("stream 41 reset: %+v", reset)
		}
		if c.max.Load() > 20 || c.total.Load() != 20 {
			t.Errorf("handlers: %d at once, %d in all; want at most 20", c.max.Load(), c.total.Load())
		}
		if n := o.requests("/many/slow"); n != 1 {
			t.Errorf("origin saw %d requests", n)
		}
	})

	t.Run("oversized header list", func(t *testing.T) {
		// RFC 9113 §10.5.1: a header list over SETTINGS_MAX_HEADER_LIST_SIZE (from
		// limits.max_header_bytes) gets 431 (RFC 6585 §5) on its stream, without the
		// handler; the connection stays usable.
		c := &concurrency{}
		fe := start(t, nil, c)
		h := dialH2(t, fe, overTLS)
		h.request(t, 1, "/big-hdr/obj", []string{"x-big-1", strings.Repeat("a", 3<<10),
			"x-big-2", strings.Repeat("b", 3<<10), "x-big-3", strings.Repeat("c", 3<<10)})
		h.request(t, 3, "/big-hdr/obj", nil)
		status := map[uint32]string{}
		for len(status) < 2 {
			if f, ok := h.read(t).(*http2.MetaHeadersFrame); ok {
				status[f.StreamID] = f.PseudoValue("status")
			}
		}
		if status[1] != "431" || status[3] != "200" {
			t.Fatalf("statuses %v, want 431 then 200", status)
		}
		if c.total.Load() != 1 || o.requests("/big-hdr/obj") != 1 {
			t.Errorf("handlers %d, origin requests %d; want 1 and 1", c.total.Load(), o.requests("/big-hdr/obj"))
		}
		// One field longer than the whole list may be is past what HPACK decodes at all
		// (RFC 7541 §5.2, a string over the limit): COMPRESSION_ERROR for the connection.
		h.request(t, 5, "/big-hdr/obj", []string{"x-big", strings.Repeat("a", 9<<10)})
		ga, _ := h.readUntilGoAway(t, 10*time.Second)
		if ga == nil || ga.ErrCode != http2.ErrCodeCompression {
			t.Fatalf("GOAWAY %v, want COMPRESSION_ERROR", ga)
		}
	})

	t.Run("continuation flood", func(t *testing.T) {
		// CVE-2023-45288: a header block that never ends, in CONTINUATION frames. Once it
		// passes the header list limit the connection is closed with GOAWAY PROTOCOL_ERROR
		// instead of reading (and decoding) on.
		c := &concurrency{}
		fe := start(t, nil, c)
		h := dialH2(t, fe, overTLS)
		var fields []string
		for i := range 2000 {
			fields = append(fields, "x-flood-"+strings.Repeat("f", i%50), strings.Repeat("v", 100))
		}
		block := h.headerBlock("/flood/obj", fields...)
		go func() {
			h.wmu.Lock()
			defer h.wmu.Unlock()
			if h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:8<<10]}) != nil {
				return
			}
			for rest := block[8<<10:]; len(rest) > 0; {
				k := min(len(rest), 8<<10)
				if h.fr.WriteContinuation(1, false, rest[:k]) != nil {
					return
				}
				rest = rest[k:]
			}
		}()
		ga, _ := h.readUntilGoAway(t, 10*time.Second)
		if ga == nil || ga.ErrCode != http2.ErrCodeProtocol {
			t.Fatalf("GOAWAY %v, want PROTOCOL_ERROR", ga)
		}
		if c.total.Load() != 0 {
			t.Errorf("%d handlers ran", c.total.Load())
		}
	})

	t.Run("frame over max_read_frame_size", func(t *testing.T) {
		// RFC 9113 §4.2: a frame larger than SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR.
		fe := start(t, nil, &concurrency{})
		h := dialH2(t, fe, overTLS)
		go h.fr.WriteRawFrame(0xfa, 0, 0, make([]byte, 64<<10+1)) // an unknown type, ignored if small
		ga, _ := h.readUntilGoAway(t, 10*time.Second)
		if ga == nil || ga.ErrCode != http2.ErrCodeFrameSize {
			t.Fatalf("GOAWAY %v, want FRAME_SIZE_ERROR", ga)
		}
	})

	t.Run("idle timeout", func(t *testing.T) {
		// An idle connection is closed with GOAWAY NO_ERROR after http2.idle_timeout.
		fe := start(t, func(cfg *Config) { cfg.HTTP2.IdleTimeout = 300 * time.Millisecond }, &concurrency{})
		h := dialH2(t, fe, overTLS)
		began := time.Now()
		ga, _ := h.readUntilGoAway(t, 5*time.Second)
		if ga == nil || ga.ErrCode != http2.ErrCodeNo || time.Since(began) < 250*time.Millisecond {
			t.Fatalf("GOAWAY %v after %v", ga, time.Since(began))
		}
	})
}

func goAwayString(ga *http2.GoAwayFrame) string {
	if ga == nil {
		return "none"
	}
	return ga.ErrCode.String() + " " + string(ga.DebugData())
}
