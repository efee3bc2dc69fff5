package h1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// writeSlice is the most given to one write (or sendfile) on a connection written through its
// net.Conn (TLS): each slice gets its own deadline, so a long body to a slow but steady client
// goes on while a client that takes nothing fails within the write timeout.
const writeSlice = 256 << 10

// outWriter is what a connection's bufio.Writer writes to — the connection — and what sends
// file bodies. It owns the write timeout: a write fails once the client has taken none of its
// bytes for timeout (nginx's send_timeout; net/http's WriteTimeout bounds a whole response
// instead, which cuts off a slow viewer's long segment and lets a stalled one hold the
// connection as long as the response's budget lasts).
//
// On a plain TCP connection (Linux) the writes go through the socket's RawConn: write(2),
// writev(2) and sendfile(2) in our own loop, which re-arms the deadline each time the socket
// is full after taking bytes, so the bound is exactly "no progress for timeout" with no
// timer work while the socket takes everything at once — a small hit costs no more than
// before. Other connections (TLS) are written in slices of writeSlice, each with a deadline
// at least timeout/2 away.
type outWriter struct {
	conn    net.Conn
	raw     syscall.RawConn // conn's socket on a plain TCP connection (Linux), else nil
	timeout time.Duration   // 0: none
	fixed   time.Time       // a deadline the handler set (ResponseController), else zero
	expired func()          // called once when the write timeout ends the connection
	waiting func()          // called before a write waits for the socket (conn.leaveLoop)
	turns   chan struct{}   // the server's turns for large bodies (Server.turns), or nil
	until   time.Time       // the deadline in force on a non-raw connection (zero: none)

	tail []byte // written right after the next Write's bytes, in one system call
	sent int    // bytes of tail that went out

	rawState // the raw loop's state (out_linux.go)
}

func newOutWriter(c net.Conn, timeout time.Duration, expired func()) outWriter {
	return outWriter{conn: c, raw: rawConnOf(c), timeout: timeout, expired: expired}
}

func (o *outWriter) Write(p []byte) (int, error) {
	if o.tail == nil {
		n, err := o.write(p, nil)
		return int(n), o.check(err)
	}
	n, err := o.write(p, o.tail)
	o.sent = int(max(0, n-int64(len(p))))
	return int(min(n, int64(len(p)))), o.check(err)
}

// check reports a write that failed on the write timeout (not on the handler's own deadline)
// to expired, once.
func (o *outWriter) check(err error) error {
	if err != nil && o.expired != nil && errors.Is(err, os.ErrDeadlineExceeded) &&
		(o.fixed.IsZero() || time.Now().Before(o.fixed)) {
		o.expired()
		o.expired = nil
	}
	return err
}

// vectored reports whether the connection writes a head and a body with one writev.
func (o *outWriter) vectored() bool { return o.raw != nil }

// flushWith flushes bw with p sent right after its buffered bytes, in one writev, and returns
// how much of p was written.
func (o *outWriter) flushWith(bw *bufio.Writer, p []byte) (int, error) {
	o.tail, o.sent = p, 0
	err := bw.Flush()
	n := o.sent
	o.tail, o.sent = nil, 0
	return n, err
}

// write sends a, then b, whole.
func (o *outWriter) write(a, b []byte) (int64, error) {
	if o.raw != nil {
		return o.writeRaw(a, b)
	}
	var n int64
	for _, p := range [2][]byte{a, b} {
		for len(p) > 0 {
			o.arm()
			m, err := o.conn.Write(p[:min(len(p), writeSlice)])
			n += int64(m)
			p = p[m:]
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// readFrom sends up to limit bytes of src: a file with sendfile(2) (its own loop on a raw
// socket; the connection's ReadFrom, which Go turns into sendfile, slice by slice otherwise),
// anything else through write.
func (o *outWriter) readFrom(src io.Reader, limit int64) (int64, error) {
	f, limit := fileOf(src, limit)
	if f != nil && o.raw != nil {
		n, err := o.sendFile(f, limit)
		return n, o.check(err)
	}
	if rf, ok := o.conn.(io.ReaderFrom); ok && f != nil {
		var n int64
		for n < limit {
			o.arm()
			m, err := rf.ReadFrom(&io.LimitedReader{R: f, N: min(limit-n, writeSlice)})
			n += m
			if err != nil || m == 0 {
				return n, o.check(err)
			}
		}
		return n, nil
	}
	return io.Copy(outOnly{o}, io.LimitReader(src, limit))
}

// fileOf returns the file under src (an *os.File, or one in an *io.LimitedReader, as Go's
// sendfile takes them) and how much of it to send, or nil.
func fileOf(src io.Reader, limit int64) (*os.File, int64) {
	if lr, ok := src.(*io.LimitedReader); ok {
		limit = min(limit, lr.N)
		src = lr.R
	}
	f, _ := src.(*os.File)
	return f, limit
}

// outOnly hides outWriter's fields from io.Copy (a plain io.Writer).
type outOnly struct{ o *outWriter }

func (w outOnly) Write(p []byte) (int, error) { return w.o.Write(p) }

// arm keeps a non-raw connection's write deadline at least timeout/2 away.
func (o *outWriter) arm() {
	if o.timeout <= 0 {
		return
	}
	now := time.Now()
	if o.until.Sub(now) >= o.timeout/2 {
		return
	}
	o.until = now.Add(o.timeout)
	o.conn.SetWriteDeadline(o.deadline(o.until))
}

// deadline is t, or the handler's own deadline if that is sooner.
func (o *outWriter) deadline(t time.Time) time.Time {
	if !o.fixed.IsZero() && (t.IsZero() || o.fixed.Before(t)) {
		return o.fixed
	}
	return t
}

// setDeadline is the handler's SetWriteDeadline: it holds for the rest of the connection's
// writes, together with the write timeout.
func (o *outWriter) setDeadline(t time.Time) error {
	o.fixed = t
	o.until = time.Time{}
	return o.conn.SetWriteDeadline(t)
}
