package h1

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLargeBodyWrites: bodies written with a declared length in writes larger than the
// buffer's room — the head and the body then go out in one writev — arrive whole and in order,
// for sizes around the buffer's, several writes per response, pipelined responses on one
// connection, and chunked and HEAD responses beside them.
func TestLargeBodyWrites(t *testing.T) {
	body := make([]byte, 4<<20+3)
	for i := range body {
		body[i] = byte(i*131 + i>>9)
	}
	_, addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, _ := strconv.Atoi(q.Get("n"))
		parts, _ := strconv.Atoi(q.Get("parts"))
		if q.Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		for i := range parts {
			w.Write(body[i*n/parts : (i+1)*n/parts])
		}
	})
	sizes := []int{1, 8000, 8192 - 100, 8192, 8193, 9000, 100_000, 4<<20 + 3}
	var raw strings.Builder
	var want []string
	var methods []string
	for _, n := range sizes {
		for _, parts := range []int{1, 3} {
			for _, variant := range []string{"", "&chunked=1"} {
				raw.WriteString("GET /?n=" + strconv.Itoa(n) + "&parts=" + strconv.Itoa(parts) + variant + " HTTP/1.1\r\nHost: a\r\n\r\n")
				want = append(want, string(body[:n]))
				methods = append(methods, "GET")
			}
		}
	}
	raw.WriteString("HEAD /?n=100000&parts=1 HTTP/1.1\r\nHost: a\r\n\r\n")
	want = append(want, "")
	methods = append(methods, "HEAD")
	rs := exchange(t, addr, raw.String(), methods...)
	for i, r := range rs {
		if got := bodyOf(r); got != want[i] {
			t.Errorf("response %d (%s): %d bytes, want %d (first difference at %d)", i, methods[i], len(got), len(want[i]), firstDiff(got, want[i]))
		}
	}
	if got := rs[len(rs)-1].ContentLength; got != 100_000 {
		t.Errorf("HEAD: Content-Length %d, want 100000", got)
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestFlushWithPeerGone: when the peer has gone, the head-and-body writev reports an error
// and no more body bytes than went out.
func TestFlushWithPeerGone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.CopyN(io.Discard, c, 1<<20) // reads 1 MiB, then goes away
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := newOutWriter(c, 10*time.Second, nil)
	o := &w
	if !o.vectored() {
		t.Fatal("a plain TCP connection is not written with writev")
	}
	bw := bufio.NewWriterSize(o, 8<<10)
	bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 67108864\r\n\r\n")
	body := bytes.Repeat([]byte("x"), 64<<20)
	n, err := o.flushWith(bw, body)
	if err == nil || n >= len(body) {
		t.Fatalf("64 MiB to a peer that read 1 MiB: %d bytes written, error %v", n, err)
	}
	if o.tail != nil {
		t.Error("the body stays attached to the writer after the flush")
	}
}
