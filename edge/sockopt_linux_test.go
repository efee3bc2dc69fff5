package edge

import (
	"io"
	"net"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// recordingListener keeps the connections it accepts, to look at their sockets afterwards.
type recordingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func notsentLowat(t *testing.T, c net.Conn) int {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	raw.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// kernelNotsentLowat is what a socket nobody tuned reports (net.ipv4.tcp_notsent_lowat).
func kernelNotsentLowat(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := ln.Accept() // an accepted socket, as the edge's are (a dialled one may read otherwise)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return notsentLowat(t, c)
}

// TestClientNotsentLowat: every client connection a Frontend accepts has TCP_NOTSENT_LOWAT
// set to limits.client_notsent_lowat (128 KiB by default), so a large response goes out in
// turns; 0 leaves the socket as the kernel made it.
func TestClientNotsentLowat(t *testing.T) {
	o := newOrigin(t, cacheable("hello", "max-age=60"))
	for _, c := range []struct {
		name string
		set  *Size
		want int
	}{
		{"default", nil, 128 << 10},
		{"configured", ptr(Size(1 << 20)), 1 << 20},
		{"off: the kernel's", ptr(Size(0)), kernelNotsentLowat(t)},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &recordingListener{}
			fe := startFrontendOn(t, o.URL, func(cfg *Config) {
				if c.set != nil {
					cfg.Limits.ClientNotsentLowat = *c.set
				}
			}, nil, func(ln net.Listener) net.Listener { rec.Listener = ln; return rec })
			// Over TLS (startFrontend's default): the option is on the TCP socket beneath it.
			resp, err := fe.client(t, "http/1.1").Get("https://" + fe.addr + "/x")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.conns) != 1 {
				t.Fatalf("%d connections accepted, want 1", len(rec.conns))
			}
			if got := notsentLowat(t, rec.conns[0]); got != c.want {
				t.Errorf("TCP_NOTSENT_LOWAT = %d, want %d", got, c.want)
			}
		})
	}
}

// TestClientListener: a listener of one's own wrapped by ClientListener (`reel demo`'s edge)
// gives its connections the Frontend's socket options.
func TestClientListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wrapped := ClientListener(ln, DefaultConfig())
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := wrapped.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, want := notsentLowat(t, c), 128<<10; got != want {
		t.Errorf("TCP_NOTSENT_LOWAT = %d, want %d (limits.client_notsent_lowat's default)", got, want)
	}
}
