package h1

import (
	"bufio"
	"net"
)

// outWriter is what a connection's bufio.Writer writes to: the connection, and, for one
// Flush, a body to send in the same writev(2) as the buffered bytes (flushWith).
type outWriter struct {
	conn net.Conn
	tail []byte // written right after the next Write's bytes, in one system call
	sent int    // bytes of tail that went out
}

func (o *outWriter) Write(p []byte) (int, error) {
	if o.tail == nil {
		return o.conn.Write(p)
	}
	bufs := net.Buffers{p, o.tail}
	n, err := bufs.WriteTo(o.conn)
	o.sent = int(max(0, n-int64(len(p))))
	return int(min(n, int64(len(p)))), err
}

// vectored reports whether the connection writes net.Buffers with one writev (a plain TCP
// connection; TLS encrypts record by record whatever the buffers).
func (o *outWriter) vectored() bool {
	_, ok := o.conn.(*net.TCPConn)
	return ok
}

// flushWith flushes bw with p sent right after its buffered bytes, in one writev, and returns
// how much of p was written.
func (o *outWriter) flushWith(bw *bufio.Writer, p []byte) (int, error) {
	o.tail, o.sent = p, 0
	err := bw.Flush()
	n := o.sent
	o.tail, o.sent = nil, 0
	return n, err
}
