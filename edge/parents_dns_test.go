package edge

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// TestParentsDNS: the shield tier from a real DNS server's SRV answer (as a Kubernetes
// headless Service gives), refreshed while the edge runs. A shield added to the answer starts
// getting its share of the misses — only the keys it now wins move, all to it — one removed gets
// no more, the parents that stay keep their state, and a failing DNS server leaves the last
// answer in force.
func TestParentsDNS(t *testing.T) {
	origin := newOrigin(t, cacheable("segment", "max-age=60"))
	shields := []*shieldNode{newShield(t, "shield-0", origin.URL), newShield(t, "shield-1", origin.URL), newShield(t, "shield-2", origin.URL)}
	// The SRV targets are names (Go refuses an IP address as one): localhost, each shield's port.
	id := map[string]*shieldNode{}
	srvOf := func(s *shieldNode) dnsmessage.SRVResource {
		_, p, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
		port, _ := strconv.Atoi(p)
		id["http://localhost:"+p] = s
		return srvTo("localhost.", port)
	}
	idOf := func(s *shieldNode) string {
		for k, v := range id {
			if v == s {
				return k
			}
		}
		t.Fatalf("no id for %s", s.Edge.name)
		return ""
	}
	dns := newDNSServer(t)
	const name = "_http._tcp.reel-shield.test."
	dns.set(func(d *dnsServer) { d.srv[name] = []dnsmessage.SRVResource{srvOf(shields[0]), srvOf(shields[1])} })
	srvOf(shields[2])

	child, srv := newEdge(t, origin.URL, func(c *Config) {
		c.Name = "edge-1"
		c.Parents.HealthInterval = 50 * time.Millisecond
		c.Parents.DNS, c.Parents.DNSServer, c.Parents.Refresh = strings.TrimSuffix(name, "."), dns.addr, 20*time.Millisecond
	})
	t.Cleanup(func() { child.Close() })
	host := strings.TrimPrefix(srv.URL, "http://")
	ids := func() []string {
		var out []string
		for _, p := range child.parents.parents() {
			out = append(out, p.id)
		}
		slices.Sort(out)
		return out
	}
	want := func(ss ...*shieldNode) []string {
		var out []string
		for _, s := range ss {
			out = append(out, idOf(s))
		}
		slices.Sort(out)
		return out
	}
	// New looked the name up before returning: the parents are there from the first request.
	if got := ids(); !slices.Equal(got, want(shields[0], shields[1])) {
		t.Fatalf("parents from DNS at start: %v, want %v", got, want(shields[0], shields[1]))
	}

	// owners ranks each key with the parents as they are now.
	owners := func(keys []string) map[string]string {
		out := map[string]string{}
		for _, path := range keys {
			r, _ := http.NewRequest(http.MethodGet, "http://"+host+path, nil)
			out[path] = child.parents.rank(child.keyOf(r))[0].id
		}
		return out
	}
	// fetch gets paths (cold at the edge) and checks each went to its owner, and only there.
	fetch := func(what string, paths []string, owner map[string]string) map[*shieldNode]int {
		t.Helper()
		before := map[*shieldNode]int64{}
		for _, s := range shields {
			before[s] = s.requests.Load()
		}
		per := map[*shieldNode]int{}
		for _, path := range paths {
			own := id[owner[path]]
			r := get(t, srv.URL+path)
			if r.status != 200 || !strings.HasPrefix(r.cacheStatus(), own.Edge.name+"; ") {
				t.Fatalf("%s %s: %d, Cache-Status %q, want it from its owner %s", what, path, r.status, r.cacheStatus(), own.Edge.name)
			}
			per[own]++
		}
		for _, s := range shields {
			if got := s.requests.Load() - before[s]; got != int64(per[s]) {
				t.Errorf("%s: %s got %d requests, owns %d of the keys", what, s.Edge.name, got, per[s])
			}
		}
		return per
	}
	batch := func(tag string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("/%s/seg-%d.m4s", tag, i))
		}
		return out
	}
	const n = 90
	keys := batch("a", n)
	two := owners(keys)
	per := fetch("two shields", keys, two)
	if per[shields[0]] == 0 || per[shields[1]] == 0 || per[shields[2]] != 0 {
		t.Fatalf("two shields in DNS: shares %d %d %d", per[shields[0]], per[shields[1]], per[shields[2]])
	}
	kept := map[string]*parent{}
	for _, p := range child.parents.parents() {
		kept[p.id] = p
	}

	// A third shield joins the Service: after a refresh it is a parent, and the keys that move
	// are those it now wins — about a third, all to it.
	dns.set(func(d *dnsServer) { d.srv[name] = append(d.srv[name], srvOf(shields[2])) })
	waitFor(t, 10*time.Second, "the third shield from DNS", func() bool { return slices.Equal(ids(), want(shields...)) })
	for _, p := range child.parents.parents() {
		if old := kept[p.id]; old != nil && old != p {
			t.Errorf("parent %s was rebuilt on a refresh; its health and connections must stay", p.id)
		}
	}
	three := owners(keys)
	moved := 0
	for _, k := range keys {
		if three[k] != two[k] {
			moved++
			if three[k] != idOf(shields[2]) {
				t.Errorf("%s moved from %s to %s: only the new shield may take keys", k, two[k], three[k])
			}
		}
	}
	// Binomial(90, 1/3): mean 30, standard deviation 4.5.
	if moved < 12 || moved > 48 {
		t.Errorf("%d of %d keys moved to the new shield, want about a third", moved, n)
	}
	t.Logf("third shield added: %d of %d keys moved, all to it", moved, n)
	keysB := batch("b", n)
	if per := fetch("three shields", keysB, owners(keysB)); per[shields[2]] == 0 {
		t.Errorf("the shield added to DNS got none of %d misses", n)
	}

	// shield-0 leaves the Service: it gets no more requests; its keys go to their next owner,
	// nobody else's move.
	dns.set(func(d *dnsServer) { d.srv[name] = []dnsmessage.SRVResource{srvOf(shields[1]), srvOf(shields[2])} })
	waitFor(t, 10*time.Second, "shield-0 gone from DNS", func() bool { return slices.Equal(ids(), want(shields[1], shields[2])) })
	after := owners(keys)
	for _, k := range keys {
		if after[k] != three[k] && three[k] != idOf(shields[0]) {
			t.Errorf("%s moved from %s to %s though its owner stayed", k, three[k], after[k])
		}
	}
	keysC := batch("c", n)
	if per := fetch("shield-0 removed", keysC, owners(keysC)); per[shields[0]] != 0 {
		t.Errorf("a shield removed from DNS got %d requests", per[shields[0]])
	}
	admin := httpGetMetrics(t, child)
	if strings.Contains(admin, idOf(shields[0])) || !strings.Contains(admin, `reel_edge_parent_up{parent="`+idOf(shields[2])+`"} 1`) {
		t.Errorf("/metrics after the change: want shield-2 up and no series of the removed shield-0:\n%s", admin)
	}

	// DNS fails: several refreshes later the parents are those of the last good answer, and
	// misses still reach them.
	dns.set(func(d *dnsServer) { d.failing = true })
	before := dns.queries.Load()
	waitFor(t, 10*time.Second, "refreshes while DNS fails", func() bool { return dns.queries.Load() >= before+3 })
	if got := ids(); !slices.Equal(got, want(shields[1], shields[2])) {
		t.Fatalf("parents after failed lookups: %v, want the last good answer", got)
	}
	keysD := batch("d", 30)
	fetch("DNS failing", keysD, owners(keysD))
}

// httpGetMetrics is the edge's /metrics through its admin API.
func httpGetMetrics(t *testing.T, e *Edge) string {
	t.Helper()
	admin := httptest.NewServer(e.AdminHandler("tok"))
	defer admin.Close()
	code, body := adminCall(t, "GET", admin.URL+"/metrics", "tok")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	var out []string
	for line := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(line, "reel_edge_parent") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestParentsDNSStaticAndStart: configured URLs and DNS together (their union), and a name
// that doesn't resolve at start leaves the configured parents in use until it does.
func TestParentsDNSStaticAndStart(t *testing.T) {
	origin := newOrigin(t, cacheable("segment", "max-age=60"))
	s0, s1 := newShield(t, "shield-0", origin.URL), newShield(t, "shield-1", origin.URL)
	dns := newDNSServer(t)
	dns.set(func(d *dnsServer) { d.failing = true })
	_, p1, _ := net.SplitHostPort(strings.TrimPrefix(s1.URL, "http://"))
	child, srv := newChild(t, "edge-1", origin.URL, func(c *Config) {
		c.Parents.DNS, c.Parents.DNSServer, c.Parents.Refresh = "reel-shield.test:"+p1, dns.addr, 20*time.Millisecond
	}, s0)
	if got := child.parents.parents(); len(got) != 1 || got[0].id != s0.URL {
		t.Fatalf("DNS failing at start: parents %d, want the configured one", len(got))
	}
	if r := get(t, srv.URL+"/x"); r.status != 200 || !strings.HasPrefix(r.cacheStatus(), "shield-0; ") {
		t.Fatalf("with DNS failing: %d %q", r.status, r.cacheStatus())
	}
	// A records: each address with the configured port.
	dns.set(func(d *dnsServer) { d.failing, d.a["reel-shield.test."] = false, [][4]byte{{127, 0, 0, 1}} })
	waitFor(t, 10*time.Second, "the A record's parent", func() bool { return len(child.parents.parents()) == 2 })
	if got := child.parents.parents(); got[0].id != s0.URL || got[1].id != s1.URL {
		t.Errorf("parents %s, %s; want the configured one, then DNS's", got[0].id, got[1].id)
	}
	// An answer naming nothing (a Service without ready pods: NXDOMAIN, or no records) is a
	// failed lookup like any other: the last answer stays.
	dns.set(func(d *dnsServer) { d.a["reel-shield.test."] = nil })
	before := dns.queries.Load()
	waitFor(t, 10*time.Second, "refreshes with an empty answer", func() bool { return dns.queries.Load() >= before+3 })
	if got := child.parents.parents(); len(got) != 2 {
		t.Errorf("after empty answers: %d parents, want the last answer's 2", len(got))
	}
}

// TestParentsDNSConfig: the parents' DNS keys parse from YAML, and each mistake names its key.
func TestParentsDNSConfig(t *testing.T) {
	load := func(t *testing.T, parents string) (Config, error) {
		t.Helper()
		f := filepath.Join(t.TempDir(), "edge.yaml")
		if err := os.WriteFile(f, []byte("origins:\n  - host: \"*\"\n    url: http://origin:8080\nparents:\n"+parents), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(f)
		if err != nil {
			return cfg, err
		}
		return cfg, cfg.Validate()
	}
	cfg, err := load(t, "  dns: _http._tcp.reel-shield.reel.svc.cluster.local\n  dns_server: 10.96.0.10:53\n  scheme: https\n  refresh: 10s\n  server_name: shield.internal\n")
	if err != nil {
		t.Fatalf("valid DNS parents: %v", err)
	}
	if p := cfg.Parents; !p.enabled() || p.DNS != "_http._tcp.reel-shield.reel.svc.cluster.local" || p.DNSServer != "10.96.0.10:53" || p.Scheme != "https" || p.Refresh != 10*time.Second {
		t.Errorf("parsed %+v", p)
	}
	for _, c := range []struct{ yaml, want string }{
		{"  dns: reel-shield.reel.svc.cluster.local\n", "parents.dns: "},
		{"  dns: reel-shield:0\n", "parents.dns: "},
		{"  dns: reel-shield:8081\n  dns_server: 10.96.0.10\n", "parents.dns_server "},
		{"  dns: reel-shield:8081\n  scheme: ftp\n", "parents.scheme "},
		{"  dns: reel-shield:8081\n  refresh: -1s\n", "parents.refresh "},
		{"  dns_server: 10.96.0.10:53\n", "parents.dns_server needs parents.dns"},
		{"  scheme: https\n", "parents.scheme needs parents.dns"},
		{"  dns: reel-shield:8081\n  ca_file: ca.pem\n", "ca_file needs an https:// url"},
		{"  dns: reel-shield:8081\n  health_interval: 0s\n", "parents.health_interval"},
	} {
		if _, err := load(t, c.yaml); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one naming %q", c.yaml, err, c.want)
		}
	}
}

// TestSampleParentsConfig: the commented parents section of samples/edge.yaml, uncommented,
// loads (every key known) and validates, DNS keys included.
func TestSampleParentsConfig(t *testing.T) {
	b, err := os.ReadFile("../samples/edge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var section []string
	for _, line := range strings.Split(string(b), "\n") {
		if line == "# parents:" || (len(section) > 0 && strings.HasPrefix(line, "#   ")) {
			section = append(section, strings.TrimPrefix(line, "# "))
		} else if len(section) > 0 {
			break
		}
	}
	f := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(f, []byte("origins:\n  - host: \"*\"\n    url: http://origin:8080\n"+strings.Join(section, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(f)
	if err == nil {
		cfg.Parents.CAFile = "" // the sample's https-only key: its urls are http
		err = cfg.Validate()
	}
	if p := cfg.Parents; err != nil || len(p.URLs) != 2 || p.DNS == "" || p.DNSServer == "" || p.Refresh != 30*time.Second || p.Scheme != "http" {
		t.Fatalf("sample parents section read wrong: %+v %v\n%s", p, err, strings.Join(section, "\n"))
	}
}
