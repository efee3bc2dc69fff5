package h1

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestNextProtoH2C: a cleartext connection opening with the HTTP/2 preface (RFC 9113 §3.4) —
// even one byte at a time — is handed to NextProto["h2c"] with every byte replayed; other
// connections stay HTTP/1.1, and every response carries ResponseFields.
func TestNextProtoH2C(t *testing.T) {
	got := make(chan string, 1)
	s, addr := start(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "h1") }, func(s *Server) {
		s.NextProto = map[string]func(net.Conn){"h2c": func(c net.Conn) {
			b := make([]byte, len(h2Preface)+5)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _ := io.ReadFull(c, b)
			got <- string(b[:n])
			io.WriteString(c, "handed off")
		}}
		s.ResponseFields = []byte("Alt-Svc: h3=\":443\"; ma=60\r\n")
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, b := range []byte(h2Preface + "after") {
		c.Write([]byte{b})
		time.Sleep(time.Millisecond)
	}
	if g := <-got; g != h2Preface+"after" {
		t.Fatalf("handed-off connection read %q", g)
	}
	reply, _ := io.ReadAll(io.LimitReader(c, 10))
	if string(reply) != "handed off" {
		t.Fatalf("reply %q", reply)
	}

	resps := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
	if resps[0].Header.Get("Alt-Svc") != `h3=":443"; ma=60` {
		t.Errorf("response fields: %v", resps[0].Header)
	}
	// A request that starts like the preface but isn't one stays with HTTP/1.x: it gets an
	// HTTP/1.1 answer (whatever it is), not the hand-off.
	exchange(t, addr, "PRI * HTTP/1.1\r\nHost: a\r\n\r\n", "PRI")
	// Shutdown waits for a handed-off connection like any other, and Close ends it.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	c2, _ := net.Dial("tcp", addr)
	defer c2.Close()
	io.WriteString(c2, h2Preface)
	time.Sleep(50 * time.Millisecond)
	if err := s.Shutdown(ctx); err == nil {
		t.Error("Shutdown did not wait for the handed-off connection")
	}
}
