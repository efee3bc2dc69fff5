package edge

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer is a real DNS server on 127.0.0.1 (UDP) answering from a zone the test changes:
// SRV records by name, A records by name; anything else is answered empty, and everything
// with SERVFAIL while failing is set.
type dnsServer struct {
	addr    string
	conn    net.PacketConn
	mu      sync.Mutex
	srv     map[string][]dnsmessage.SRVResource
	a       map[string][][4]byte
	failing bool
	queries atomic.Int64
}

func newDNSServer(t *testing.T) *dnsServer {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{addr: conn.LocalAddr().String(), conn: conn, srv: map[string][]dnsmessage.SRVResource{}, a: map[string][][4]byte{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			if out := s.answer(buf[:n]); out != nil {
				conn.WriteTo(out, from)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

func (s *dnsServer) set(f func(s *dnsServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *dnsServer) answer(query []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	s.queries.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if s.failing {
		rh.RCode = dnsmessage.RCodeServerFailure
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	name := strings.ToLower(q.Name.String())
	hdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
	if !s.failing {
		switch q.Type {
		case dnsmessage.TypeSRV:
			for _, r := range s.srv[name] {
				b.SRVResource(hdr, r)
			}
		case dnsmessage.TypeA:
			for _, ip := range s.a[name] {
				b.AResource(hdr, dnsmessage.AResource{A: ip})
			}
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

func srvTo(target string, port int) dnsmessage.SRVResource {
	return dnsmessage.SRVResource{Priority: 10, Weight: 10, Port: uint16(port), Target: dnsmessage.MustNewName(target)}
}

// waitMembers waits until m's members are want.
func waitMembers(t *testing.T, m *membership, want []string) {
	t.Helper()
	waitFor(t, 10*time.Second, "members "+strings.Join(want, " "), func() bool { return slices.Equal(m.members(), want) })
}

// TestMembershipDNS: membership from a real DNS server — SRV records (target and port) and
// A records (with the configured port), merged with the static peers; a change in the answer
// is picked up on refresh; a failing server leaves the last good answer in place.
func TestMembershipDNS(t *testing.T) {
	dns := newDNSServer(t)
	dns.set(func(s *dnsServer) {
		s.srv["_admin._tcp.reel-shield.test."] = []dnsmessage.SRVResource{srvTo("shield-0.reel-shield.test.", 9091), srvTo("shield-1.reel-shield.test.", 9092)}
		s.a["reel-edge.test."] = [][4]byte{{127, 0, 0, 2}, {127, 0, 0, 3}}
	})
	base := Cluster{DNSServer: dns.addr, Refresh: 20 * time.Millisecond, Timeout: time.Second}.withDefaults()

	srv := base
	srv.DNS, srv.Peers = "_admin._tcp.reel-shield.test", []string{"http://edge-1:9091", "http://shield-0.reel-shield.test:9091"}
	var logs lockedBuffer
	m := newMembership(srv, slog.New(slog.NewTextHandler(&logs, nil)))
	m.start()
	defer m.close()
	if got, want := m.members(), []string{"http://edge-1:9091", "http://shield-0.reel-shield.test:9091", "http://shield-1.reel-shield.test:9092"}; !slices.Equal(got, want) {
		t.Fatalf("SRV ∪ static: %v, want %v", got, want)
	}
	// A shield added to the headless Service: found on a refresh, without a restart.
	dns.set(func(s *dnsServer) {
		s.srv["_admin._tcp.reel-shield.test."] = append(s.srv["_admin._tcp.reel-shield.test."], srvTo("shield-2.reel-shield.test.", 9091))
	})
	waitMembers(t, m, []string{"http://edge-1:9091", "http://shield-0.reel-shield.test:9091", "http://shield-1.reel-shield.test:9092", "http://shield-2.reel-shield.test:9091"})
	// DNS fails: several refreshes later the last answer is still there.
	dns.set(func(s *dnsServer) { s.failing = true })
	before := dns.queries.Load()
	waitFor(t, 10*time.Second, "refreshes while DNS fails", func() bool { return dns.queries.Load() >= before+3 })
	if got := m.members(); len(got) != 4 {
		t.Fatalf("after failed lookups: %v, want the last good answer (4 peers)", got)
	}
	dns.set(func(s *dnsServer) {
		s.failing = false
		s.srv["_admin._tcp.reel-shield.test."] = []dnsmessage.SRVResource{srvTo("shield-1.reel-shield.test.", 9092)}
	})
	waitMembers(t, m, []string{"http://edge-1:9091", "http://shield-0.reel-shield.test:9091", "http://shield-1.reel-shield.test:9092"})
	if n := strings.Count(logs.String(), "cluster DNS lookup failed"); n != 1 {
		t.Errorf("%d log lines for one outage, want 1:\n%s", n, logs.String())
	}

	a := base
	a.DNS = "reel-edge.test:9091"
	ma := newMembership(a, slog.New(slog.NewTextHandler(&logs, nil)))
	ma.start()
	defer ma.close()
	if got, want := ma.members(), []string{"http://127.0.0.2:9091", "http://127.0.0.3:9091"}; !slices.Equal(got, want) {
		t.Fatalf("A records: %v, want %v", got, want)
	}
	dns.set(func(s *dnsServer) { s.a["reel-edge.test."] = [][4]byte{{127, 0, 0, 3}, {127, 0, 0, 4}} })
	waitMembers(t, ma, []string{"http://127.0.0.3:9091", "http://127.0.0.4:9091"})
}

// TestClusterPurgeDNS: a cluster purge reaches the members that DNS names (SRV to the admin
// listeners, as localhost: Go refuses an IP address as an SRV target), including one added to
// the answer while the edge runs.
func TestClusterPurgeDNS(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write([]byte("object " + r.URL.Path))
	})
	dns := newDNSServer(t)
	const name = "_admin._tcp.reel.test."
	port := func(addr string) int {
		_, p, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		return n
	}
	addrs := []string{reserveAddr(t), reserveAddr(t), reserveAddr(t)}
	dns.set(func(s *dnsServer) {
		s.srv[name] = []dnsmessage.SRVResource{srvTo("localhost.", port(addrs[1]))}
	})
	var nodes []*adminNode
	for i, a := range addrs {
		n := newAdminNode(t, o.URL, a, func(c *Config) {
			if i == 0 {
				c.Cluster = Cluster{DNS: strings.TrimSuffix(name, "."), DNSServer: dns.addr, Refresh: 20 * time.Millisecond}
			}
		})
		n.serveAdmin(t)
		nodes = append(nodes, n)
		n.hit(t, "/x")
	}
	target := url.QueryEscape("http://video.example/x")
	code, rep, _ := purgeCall(t, "POST", nodes[0].admin+"/purge?url="+target+"&cluster=1")
	if s := rep.Nodes["http://localhost:"+strconv.Itoa(port(addrs[1]))]; code != 200 || len(rep.Nodes) != 1 || s == nil || s.State != "confirmed" || s.Purged != 1 {
		t.Fatalf("purge with one member in DNS: %d %+v", code, rep)
	}
	// The third node joins the answer; the next purge reaches it.
	dns.set(func(s *dnsServer) {
		s.srv[name] = append(s.srv[name], srvTo("localhost.", port(addrs[2])))
	})
	c := nodes[0].e.cluster.c
	waitFor(t, 10*time.Second, "third node in DNS membership", func() bool { return len(c.members.members()) == 2 })
	for _, n := range nodes {
		n.hit(t, "/x")
	}
	code, rep, _ = purgeCall(t, "POST", nodes[0].admin+"/purge?url="+target+"&cluster=1")
	if code != 200 || rep.Confirmed != 2 || rep.Nodes["http://localhost:"+strconv.Itoa(port(addrs[2]))] == nil {
		t.Fatalf("purge after the third node joined: %d %+v", code, rep)
	}
	for i, n := range nodes {
		if n.hit(t, "/x") {
			t.Errorf("node %d still hits /x", i+1)
		}
	}
}

// lockedBuffer is a log destination goroutines share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
