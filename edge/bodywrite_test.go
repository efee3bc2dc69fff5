package edge

import (
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
)

// writeRecorder is a listener whose connections record how response bodies reach them: the
// source type of every ReadFrom (what Go's net package turns into sendfile(2) for an *os.File)
// and the bytes of every Write.
type writeRecorder struct {
	net.Listener
	mu      sync.Mutex
	sources []string
	writes  []int
}

func (l *writeRecorder) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{TCPConn: c.(*net.TCPConn), l: l}, nil
}

type recordingConn struct {
	*net.TCPConn
	l *writeRecorder
}

func (c *recordingConn) ReadFrom(r io.Reader) (int64, error) {
	src := fmt.Sprintf("%T", r)
	if lr, ok := r.(*io.LimitedReader); ok {
		src += "(" + fmt.Sprintf("%T", lr.R) + ")"
	}
	c.l.mu.Lock()
	c.l.sources = append(c.l.sources, src)
	c.l.mu.Unlock()
	return c.TCPConn.ReadFrom(r)
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes = append(c.l.writes, len(p))
	c.l.mu.Unlock()
	return c.TCPConn.Write(p)
}

// TestDiskHitSendfile: a whole-body hit from the disk tier goes to the client connection's
// ReadFrom with the tier's *os.File, which Go's net package sends with sendfile(2) (no copy
// through user space); the body arrives intact. (A connection wrapped like this one is
// written through its net.Conn, in slices that each get the write timeout; a plain TCP
// connection gets edge/h1's own sendfile loop, TestSendfile there.)
func TestDiskHitSendfile(t *testing.T) {
	big := make([]byte, 3<<20)
	rand.Read(big)
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write(big)
	})
	rec := &writeRecorder{}
	dir := t.TempDir()
	e, srv := newEdgeOn(t, o.URL, func(c *Config) {
		c.Memory = 8 << 20 // objects over 1 MiB skip memory
		c.CacheDir = dir
		c.Disk = 64 << 20
	}, func(l net.Listener) net.Listener { rec.Listener = l; return rec })
	e.tiers.disk.SetMinFree(0)
	get(t, srv.URL+"/big", "Host", "cdn.test")
	rec.mu.Lock()
	rec.sources = nil
	rec.mu.Unlock()
	r := get(t, srv.URL+"/big", "Host", "cdn.test")
	if !strings.Contains(r.cacheStatus(), "hit") || r.body != string(big) {
		t.Fatalf("disk hit: %q, %d bytes", r.cacheStatus(), len(r.body))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := fmt.Sprintf("*io.LimitedReader(%T)", (*os.File)(nil))
	if len(rec.sources) == 0 {
		t.Fatalf("the disk hit's body never reached the connection's ReadFrom (sendfile)")
	}
	for _, src := range rec.sources {
		if src != want {
			t.Fatalf("the disk hit's body reached the connection's ReadFrom as %v, want only %s (sendfile)", rec.sources, want)
		}
	}
}
