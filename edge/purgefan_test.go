package edge

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestMergePeers: the static list ∪ the DNS answer, sorted, once each.
func TestMergePeers(t *testing.T) {
	got := mergePeers([]string{"http://b:9091", "http://a:9091/"}, []string{"http://a:9091", "http://c:9091"}, nil)
	want := []string{"http://a:9091", "http://b:9091", "http://c:9091"}
	if !slices.Equal(got, want) {
		t.Fatalf("mergePeers = %v, want %v", got, want)
	}
	if got := mergePeers(nil, nil); len(got) != 0 {
		t.Fatalf("empty lists → %v", got)
	}
}

// TestPurgeIDs: an id is applied once until its TTL passes; the memory is bounded, the oldest
// forgotten first.
func TestPurgeIDs(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ids := newPurgeIDs(3, time.Minute)
	if !ids.add("a", t0) || ids.add("a", t0.Add(time.Second)) {
		t.Fatal("a repeat within the TTL must be refused")
	}
	if !ids.add("a", t0.Add(time.Minute)) {
		t.Fatal("an id past its TTL must be accepted again")
	}
	now := t0.Add(2 * time.Minute)
	for _, id := range []string{"b", "c", "d"} {
		if !ids.add(id, now) {
			t.Fatalf("new id %s refused", id)
		}
	}
	if n := ids.len(); n != 3 {
		t.Fatalf("%d ids remembered, bound is 3", n)
	}
	if !ids.add("a", now) {
		t.Fatal("a (expired and the oldest) should be forgotten")
	}
	if ids.add("d", now) || !ids.add("b", now) {
		t.Fatal("with room for 3: d (recent) is remembered, b (the oldest) forgotten")
	}
}

// TestClusterConfig: peers, DNS sources and numbers are checked.
func TestClusterConfig(t *testing.T) {
	for _, c := range []struct {
		cl  Cluster
		bad string
	}{
		{Cluster{Peers: []string{"http://e2:9091"}, DNS: "_admin._tcp.reel.ns.svc"}, ""},
		{Cluster{DNS: "reel-shield.ns.svc:9091", DNSServer: "10.0.0.10:53"}, ""},
		{Cluster{Peers: []string{"e2:9091"}}, "cluster.peers[0]"},
		{Cluster{Peers: []string{"http://e2:9091/purge"}}, "cluster.peers[0]"},
		{Cluster{DNS: "reel-shield.ns.svc"}, "cluster.dns"},
		{Cluster{DNS: "reel:0"}, "cluster.dns"},
		{Cluster{DNSServer: "10.0.0.10"}, "cluster.dns_server"},
		{Cluster{Scheme: "ftp"}, "cluster.scheme"},
		{Cluster{RetryFor: -time.Second}, "must not be negative"},
	} {
		err := c.cl.validate()
		if (err == nil) != (c.bad == "") || (err != nil && !strings.Contains(err.Error(), c.bad)) {
			t.Errorf("%+v: %v, want %q", c.cl, err, c.bad)
		}
	}
}

// adminNode is an in-process edge with its admin API on a loopback address of its own.
type adminNode struct {
	e     *Edge
	srv   *edgeServer
	admin string // http://addr
	ln    net.Listener
	hs    *http.Server
}

const purgeToken = "cluster-token"

// reserveAddr is a free loopback address (bound, then released).
func reserveAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newAdminNode(t *testing.T, origin, addr string, change func(*Config)) *adminNode {
	e, srv := newEdge(t, origin, change)
	n := &adminNode{e: e, srv: srv, admin: "http://" + addr}
	t.Cleanup(func() { e.Close() })
	return n
}

// serveAdmin starts the node's admin API on its address (bounded retries: a released port may
// take a moment to be free again).
func (n *adminNode) serveAdmin(t *testing.T) {
	addr := strings.TrimPrefix(n.admin, "http://")
	var err error
	for range 50 {
		if n.ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	n.hs = &http.Server{Handler: n.e.AdminHandler(purgeToken)}
	go n.hs.Serve(n.ln)
	t.Cleanup(func() { n.hs.Close() })
}

func (n *adminNode) hit(t *testing.T, path string) bool {
	return strings.Contains(get(t, n.srv.URL+path, "Host", "video.example").cacheStatus(), "hit")
}

func purgeCall(t *testing.T, method, u string) (int, purgeReport, map[string]any) {
	t.Helper()
	code, body := adminCall(t, method, u, purgeToken)
	var r purgeReport
	var m map[string]any
	json.Unmarshal([]byte(body), &r)
	json.Unmarshal([]byte(body), &m)
	return code, r, m
}

// waitFor polls cond until it holds, failing after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		<-tick.C
	}
}

// TestClusterPurge: three in-process edges, the third's admin API down during a cluster purge
// made at the first. The report confirms the first two and says the third is pending; the
// third gets the purge by retry when its API comes up, and the report then confirms it. A
// repeat of the id changes nothing anywhere; a forwarded purge is not forwarded again.
func TestClusterPurge(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write([]byte("object " + r.URL.Path))
	})
	addrs := []string{reserveAddr(t), reserveAddr(t), reserveAddr(t)}
	var peers []string
	for _, a := range addrs {
		peers = append(peers, "http://"+a)
	}
	cluster := func(c *Config) {
		c.Cluster = Cluster{Peers: peers, RetryInterval: 20 * time.Millisecond, Timeout: 2 * time.Second}
	}
	var nodes []*adminNode
	for i, a := range addrs {
		n := newAdminNode(t, o.URL, a, cluster)
		if i < 2 {
			n.serveAdmin(t)
		}
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		n.hit(t, "/x")
		n.hit(t, "/y")
		if !n.hit(t, "/x") {
			t.Fatal("warm-up: /x not a hit")
		}
	}
	target := url.QueryEscape("http://video.example/x")
	code, rep, _ := purgeCall(t, "POST", nodes[0].admin+"/purge?url="+target+"&cluster=1&id=p-1")
	t.Logf("report with node 3 down: %d %+v", code, rep)
	if code != http.StatusAccepted || rep.ID != "p-1" || rep.Purged != 1 || rep.Complete || rep.Pending != 1 || rep.Confirmed != 2 {
		t.Fatalf("cluster purge with a node down: %d %+v", code, rep)
	}
	if s := rep.Nodes[peers[0]]; s == nil || s.State != "already" {
		t.Errorf("the node itself, in its own peer list: %+v, want already", s)
	}
	if s := rep.Nodes[peers[1]]; s == nil || s.State != "confirmed" || s.Purged != 1 {
		t.Errorf("node 2: %+v, want confirmed with 1 purged", s)
	}
	if s := rep.Nodes[peers[2]]; s == nil || s.State != "pending" || s.Error == "" {
		t.Errorf("node 3 (down): %+v, want pending with the reason", s)
	}
	if nodes[0].hit(t, "/x") || nodes[1].hit(t, "/x") {
		t.Error("nodes 1 and 2 still hit /x after the purge")
	}
	if !nodes[1].hit(t, "/y") {
		t.Error("the purge of /x took /y too")
	}
	// Node 3 still has it until its API comes back (and /x is a hit there: warmed above).
	nodes[2].serveAdmin(t)
	waitFor(t, 10*time.Second, "node 3 confirmed by retry", func() bool {
		_, r, _ := purgeCall(t, "GET", nodes[0].admin+"/purge/p-1")
		return r.Complete
	})
	_, rep, _ = purgeCall(t, "GET", nodes[0].admin+"/purge/p-1")
	if s := rep.Nodes[peers[2]]; s == nil || s.State != "confirmed" || s.Purged != 1 || s.Attempts < 2 {
		t.Errorf("node 3 after its return: %+v, want confirmed after ≥ 2 attempts", s)
	}
	if rep.Confirmed != 3 || rep.Failed != 0 {
		t.Errorf("final report %+v, want 3 confirmed", rep)
	}
	if nodes[2].hit(t, "/x") {
		t.Error("node 3 still hits /x after the retry confirmed")
	}
	c0 := nodes[0].e.cluster.c
	if r := counterValue(c0.retried); r < 1 {
		t.Errorf("retries counted: %v", r)
	}
	if f := counterValue(c0.failed); f < 1 {
		t.Errorf("failures counted: %v", f)
	}
	if f := counterValue(c0.forwarded); f != 3 {
		t.Errorf("forwarded and confirmed: %v, want 3", f)
	}

	// Repeats: every node now holds /x again; the same id, at the first node (as a cluster
	// purge) and at the second (as a forwarded one), purges nothing.
	for _, n := range nodes {
		n.hit(t, "/x")
	}
	code, again, _ := purgeCall(t, "POST", nodes[0].admin+"/purge?url="+target+"&cluster=1&id=p-1")
	if code != 200 || again.Confirmed != 3 {
		t.Errorf("repeated cluster purge: %d %+v", code, again)
	}
	code, _, m := purgeCall(t, "POST", nodes[1].admin+"/purge?url="+target+"&id=p-1")
	if code != 200 || m["already"] != true || m["purged"] != 0.0 {
		t.Errorf("repeated forwarded purge: %d %v", code, m)
	}
	for i, n := range nodes {
		if !n.hit(t, "/x") {
			t.Errorf("node %d: a repeated purge id purged /x", i+1)
		}
	}
	// No loop: the members applied the forwarded purge without forwarding it.
	for i, n := range nodes[1:] {
		if c := n.e.cluster.c; counterValue(c.forwarded)+counterValue(c.failed) != 0 || c.job("p-1") != nil {
			t.Errorf("node %d forwarded a forwarded purge", i+2)
		}
	}
	// A fresh id purges again, everywhere, at once.
	code, rep, _ = purgeCall(t, "POST", nodes[1].admin+"/purge?url="+target+"&cluster=1")
	if code != 200 || rep.Confirmed != 3 || rep.ID == "" || rep.ID == "p-1" {
		t.Errorf("second cluster purge (generated id): %d %+v", code, rep)
	}
	for i, n := range nodes {
		if n.hit(t, "/x") {
			t.Errorf("node %d: /x still a hit after the second cluster purge", i+1)
		}
	}
}

// TestClusterPurgeGivesUp: a member that never comes back is reported failed after RetryFor.
func TestClusterPurgeGivesUp(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write([]byte("x"))
	})
	a, dead := reserveAddr(t), reserveAddr(t)
	n := newAdminNode(t, o.URL, a, func(c *Config) {
		c.Cluster = Cluster{Peers: []string{"http://" + dead}, RetryInterval: 10 * time.Millisecond, RetryFor: 200 * time.Millisecond}
	})
	n.serveAdmin(t)
	code, rep, _ := purgeCall(t, "POST", n.admin+"/purge?tag=show&cluster=1&id=gone")
	if code != http.StatusAccepted || rep.Pending != 1 {
		t.Fatalf("%d %+v", code, rep)
	}
	waitFor(t, 10*time.Second, "dead member reported failed", func() bool {
		_, r, _ := purgeCall(t, "GET", n.admin+"/purge/gone")
		return r.Complete
	})
	_, rep, _ = purgeCall(t, "GET", n.admin+"/purge/gone")
	if s := rep.Nodes["http://"+dead]; rep.Failed != 1 || s == nil || s.State != "failed" || s.Attempts < 2 {
		t.Fatalf("after retry_for: %+v (%+v)", rep, s)
	}
	if code, _ := adminCall(t, "GET", n.admin+"/purge/nope", purgeToken); code != 404 {
		t.Errorf("unknown id: %d, want 404", code)
	}
	if code, _ := adminCall(t, "POST", n.admin+"/purge?tag=a&id=bad%20id", purgeToken); code != 400 {
		t.Errorf("bad id: %d, want 400", code)
	}
}

// TestSampleClusterConfig: the commented cluster section of samples/edge.yaml, uncommented,
// loads (every key known) and validates.
func TestSampleClusterConfig(t *testing.T) {
	b, err := os.ReadFile("../samples/edge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var section []string
	for _, line := range strings.Split(string(b), "\n") {
		if line == "# cluster:" || (len(section) > 0 && strings.HasPrefix(line, "#   ")) {
			section = append(section, strings.TrimPrefix(line, "# "))
		} else if len(section) > 0 {
			break
		}
	}
	var cfg struct {
		Cluster Cluster `yaml:"cluster"`
	}
	dec := yaml.NewDecoder(strings.NewReader(strings.Join(section, "\n")))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("sample cluster section: %v\n%s", err, strings.Join(section, "\n"))
	}
	c := cfg.Cluster
	if err := c.validate(); err != nil || len(c.Peers) != 2 || c.DNS == "" || c.RetryFor != 10*time.Minute || c.Concurrency != 8 || c.DNSServer == "" {
		t.Fatalf("sample cluster section read wrong: %+v %v", c, err)
	}
}

// TestClusterPurgeConcurrentRepeats: the same cluster purge sent many times at once is applied
// once here and once at the member; every answer is the full report.
func TestClusterPurgeConcurrentRepeats(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write([]byte("object " + r.URL.Path))
	})
	addrs := []string{reserveAddr(t), reserveAddr(t)}
	var nodes []*adminNode
	for _, a := range addrs {
		n := newAdminNode(t, o.URL, a, func(c *Config) { c.Cluster = Cluster{Peers: []string{"http://" + addrs[1]}} })
		n.serveAdmin(t)
		nodes = append(nodes, n)
	}
	const n = 16
	var wg sync.WaitGroup
	reports := make(chan purgeReport, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, r, _ := purgeCall(t, "POST", nodes[0].admin+"/purge?tag=show&cluster=1&id=same")
			reports <- r
		}()
	}
	wg.Wait()
	close(reports)
	for r := range reports {
		if s := r.Nodes["http://"+addrs[1]]; !r.Complete || s == nil || s.State != "confirmed" || s.Attempts != 1 {
			t.Fatalf("answer to a repeat: %+v (%+v)", r, s)
		}
	}
	if f := counterValue(nodes[0].e.cluster.c.forwarded); f != 1 {
		t.Errorf("%d forwarded purges for %d repeats of one id, want 1", int(f), n)
	}
	if got := counterValue(nodes[1].e.m.purges.WithLabelValues("tag", "hard")); got != 1 {
		t.Errorf("the member applied the purge %v times, want 1", got)
	}
	if got := counterValue(nodes[0].e.m.purges.WithLabelValues("tag", "hard")); got != 1 {
		t.Errorf("the node applied the purge %v times, want 1", got)
	}
}
