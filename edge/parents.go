package edge

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// HealthPath is where every reel edge answers health checks on its client listener: the
// default path parents are probed on.
const HealthPath = "/_reel/health"

// The shield tier (Config.Parents): a miss on a path that goes through the parents is sent to
// the parent that owns its cache key, the first healthy one in the key's rendezvous ranking.
// Every edge ranks the same way, so all the edges' misses for one object meet at one parent
// and its fill table coalesces them into one origin fetch.
//
// Rendezvous (highest random weight) hashing rather than a ring: with a handful of parents
// ranking them all costs a few hashes per miss, needs no virtual nodes to spread keys evenly,
// and gives each key a full order of preference — its next owner when the first is down —
// where ring libraries answer only the first owner. Adding a parent moves exactly the keys
// it now wins, about 1/N of them, and nothing between the others.

// parent is one member of the shield tier.
type parent struct {
	up    *upstream // its URL and connection pools; requests keep the client's Host
	probe *http.Client
	id    string // its URL, for metrics and logs
	seed  uint64 // the hash of its URL: its identity in the ranking
	// Its health (health.go): probes bring it back, a probe or a request that can't reach it
	// takes it out.
	*health

	ok, failed prometheus.Counter
}

// parentSet is the parents — the configured URLs and those DNS names — their health and the
// loop that checks it. The list changes when DNS answers differently: a parent that stays keeps
// its parent (health, connections, counters), a new one starts up (healthy until shown
// otherwise), one that is gone gets no more requests. Rendezvous hashing then moves only the
// keys the new parent wins, or those the gone one owned.
type parentSet struct {
	list     atomic.Pointer[[]*parent] // replaced whole, never changed in place
	direct   bool                      // go to the origin when no parent is healthy
	path     string
	interval time.Duration
	log      *slog.Logger
	directs  prometheus.Counter // requests sent to the origin because no parent was healthy
	requests *prometheus.CounterVec

	cfg         Parents
	newUpstream func(Origin) (*upstream, error)
	dns         *dnsMembers // nil without parents.dns
	mu          sync.Mutex  // serialises setMembers

	stop context.CancelFunc
	done chan struct{}
}

// Parents.enabled: a shield tier is configured (by URL or by DNS).
func (p Parents) enabled() bool { return len(p.URLs) > 0 || p.DNS != "" }

// validateDNS checks the DNS keys of the parents section (config.go calls it).
func (p Parents) validateDNS() error {
	if p.DNS == "" {
		for _, k := range []struct {
			key string
			set bool
		}{{"dns_server", p.DNSServer != ""}, {"scheme", p.Scheme != ""}, {"refresh", p.Refresh != 0}} {
			if k.set {
				return fmt.Errorf("parents.%s needs parents.dns", k.key)
			}
		}
		return nil
	}
	if err := validateDNS("parents", p.DNS, p.DNSServer, p.Scheme, p.Refresh); err != nil {
		return err
	}
	scheme := cmp.Or(p.Scheme, "http")
	u := &url.URL{Scheme: scheme, Host: "parent.invalid"}
	if err := (Origin{URL: u.String(), Connection: p.Connection}).checkUpstream(u); err != nil {
		return fmt.Errorf("parents (dns, scheme %s): %w", scheme, err)
	}
	return nil
}

// newParentSet builds the parents of cfg, their connection pools made by newUpstream. Those
// DNS names are added by start.
func newParentSet(cfg Config, m *metrics, log *slog.Logger, newUpstream func(Origin) (*upstream, error)) (*parentSet, error) {
	s := &parentSet{direct: cfg.Parents.DirectFallback, path: cfg.Parents.HealthPath,
		interval: cfg.Parents.HealthInterval, log: log, cfg: cfg.Parents, newUpstream: newUpstream,
	}
	s.list.Store(new([]*parent))
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_edge_parent_requests_total", Help: "Requests sent to parents (the shield tier), by parent and result (error: no connection; the next owner was tried).",
	}, []string{"parent", "result"})
	s.directs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reel_edge_parent_direct_total", Help: "Requests that went to the origin because no parent was healthy.",
	})
	m.reg.MustRegister(s.requests, s.directs, parentUp{s, prometheus.NewDesc("reel_edge_parent_up",
		"1 while a parent passes its health checks, else 0.", []string{"parent"}, nil)})
	if err := s.setMembers(nil); err != nil {
		return nil, err
	}
	if cfg.Parents.DNS != "" {
		s.dns = newDNSMembers("parents", cfg.Parents.DNS, cfg.Parents.DNSServer, cfg.Parents.Scheme,
			cfg.Parents.Refresh, 0, log, func(urls []string) { s.setMembers(urls) })
	}
	return s, nil
}

// parents is the current list.
func (s *parentSet) parents() []*parent { return *s.list.Load() }

// setMembers makes the list the configured URLs ∪ dns (parent URLs, as DNS found them). A
// configured URL that can't be set up fails (New reports it); one found by DNS is logged and
// left out.
func (s *parentSet) setMembers(dns []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := map[string]*parent{}
	for _, p := range s.parents() {
		old[p.id] = p
	}
	static := map[string]bool{}
	var ids []string
	for _, raw := range s.cfg.URLs {
		u, _ := url.Parse(raw) // validated
		u.Path = ""
		if !static[u.String()] {
			ids = append(ids, u.String())
			static[u.String()] = true
		}
	}
	var found []string
	for _, raw := range dns {
		if u, err := url.Parse(raw); err == nil {
			u.Path = ""
			if !static[u.String()] {
				found = append(found, u.String())
			}
		}
	}
	ids = append(ids, mergePeers(found)...) // the configured ones in their order, then DNS's sorted
	list := make([]*parent, 0, len(ids))
	var added []string
	for _, id := range ids {
		if p := old[id]; p != nil {
			list = append(list, p)
			delete(old, id)
			continue
		}
		p, err := s.newParent(id)
		if err != nil {
			if static[id] {
				return fmt.Errorf("parents: %w", err)
			}
			s.log.Warn("parent found by DNS left out", "parent", id, "err", err)
			continue
		}
		list = append(list, p)
		added = append(added, id)
	}
	s.list.Store(&list)
	var removed []string
	for id, p := range old {
		removed = append(removed, id)
		// Requests already sent finish; no new one picks it. Its counters go with it.
		p.up.client.CloseIdleConnections()
		p.up.blocking.CloseIdleConnections()
		s.requests.DeleteLabelValues(id, "ok")
		s.requests.DeleteLabelValues(id, "error")
	}
	if s.dns != nil && (len(added) > 0 || len(removed) > 0) {
		slices.Sort(removed)
		s.log.Info("parents changed (DNS)", "added", added, "removed", removed, "parents", len(list))
	}
	return nil
}

// newParent sets up the parent at id (scheme://host:port).
func (s *parentSet) newParent(id string) (*parent, error) {
	up, err := s.newUpstream(Origin{URL: id, Connection: s.cfg.Connection})
	if err != nil {
		return nil, err
	}
	up.parent = true
	p := &parent{
		up: up, probe: probeClient(up, s.interval), id: id, seed: xxhash.Sum64String(id),
		ok: s.requests.WithLabelValues(id, "ok"), failed: s.requests.WithLabelValues(id, "error"),
	}
	p.health = newHealth(s.log, "parent", "parent", id, "its objects go to their next owner", 1, 0, true)
	return p, nil
}

// parentUp collects reel_edge_parent_up for the current parents.
type parentUp struct {
	s    *parentSet
	desc *prometheus.Desc
}

func (c parentUp) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c parentUp) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.s.parents() {
		v := 0.0
		if p.healthy.Load() {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, p.id)
	}
}

// probeTimeout bounds one health probe: the interval, but at least a second — a busy parent
// (or a busy machine) that answers a probe in 60 ms is up, and a probe that timed out at a
// short interval marked it down and moved its objects to their next owner — and at most 5 s.
// The probe loop waits for its probes, so a timeout longer than the interval only delays the
// next round.
func probeTimeout(interval time.Duration) time.Duration {
	return min(max(interval, time.Second), 5*time.Second)
}

// probeClient is what probes parent up: its TLS settings (CA, server name, client
// certificate: a probe without them failed every HTTPS parent with a private CA, which was then
// marked down a moment after start), but a connection of its own each time (no proxy, no pool
// shared with requests): a parent passes only if it still accepts connections, and a saturated
// pool can't fail it.
func probeClient(up *upstream, interval time.Duration) *http.Client {
	t := &http.Transport{DisableKeepAlives: true, TLSHandshakeTimeout: 5 * time.Second}
	if ot, ok := up.client.Transport.(*originTransport); ok && ot.TLSClientConfig != nil {
		t.TLSClientConfig = ot.TLSClientConfig.Clone()
		t.TLSClientConfig.VerifyConnection = nil // not a request's connection: not counted as one
	}
	return &http.Client{Timeout: probeTimeout(interval), Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// start looks the parents' DNS name up (once before it returns, then every refresh) and runs
// the health checks, until close.
func (s *parentSet) start() {
	if s.dns != nil {
		s.dns.start()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			s.checkAll(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (s *parentSet) close() {
	if s.dns != nil {
		s.dns.close()
	}
	if s.stop != nil {
		s.stop()
		<-s.done
	}
}

// checkAll probes every parent at once and records the results.
func (s *parentSet) checkAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range s.parents() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.check(ctx, p)
			if ctx.Err() != nil {
				return
			}
			s.setHealth(p, err)
		}()
	}
	wg.Wait()
}

func (s *parentSet) check(ctx context.Context, p *parent) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.id+s.path, nil)
	if err != nil {
		return err
	}
	resp, err := p.probe.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return errors.New(resp.Status)
	}
	return nil
}

// setHealth records a probe's or a request's verdict, logging changes.
func (s *parentSet) setHealth(p *parent, err error) { p.set(err == nil, err) }

// rank returns the parents in key's order of preference: by descending rendezvous score.
func (s *parentSet) rank(key string) []*parent {
	type scored struct {
		p     *parent
		score uint64
	}
	kh := xxhash.Sum64String(key)
	var buf [8]scored
	all := buf[:0]
	for _, p := range s.parents() {
		all = append(all, scored{p, mix64(kh ^ p.seed)})
	}
	slices.SortFunc(all, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return strings.Compare(a.p.id, b.p.id)
	})
	out := make([]*parent, len(all))
	for i, sc := range all {
		out[i] = sc.p
	}
	return out
}

// mix64 is a 64-bit finaliser (the one SplitMix64 ends with): every input bit flips each
// output bit with probability about 1/2, so the scores of one key at different parents behave
// as independent draws — what makes each parent the winner for an equal share of keys.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// errNoParent answers a request whose parents are all down when falling back to the origin
// is off.
var errNoParent = errors.New("no parent is available")

// viaParents reports whether r's path goes through the parents: the most specific rule that
// says so decides, and everything does when no rule does.
func (e *Edge) viaParents(r *http.Request) bool {
	if e.parents == nil {
		return false
	}
	return e.rulingFor(r).parent
}

// send sends r upstream with the extra header fields: to the parent owning its key when its
// path goes through the parents, else — or when no parent can be reached and falling back is
// allowed — to its origin up.
func (e *Edge) send(ctx context.Context, up *upstream, r *http.Request, cacheable bool, extra http.Header) (*http.Response, error) {
	if e.viaParents(r) {
		resp, err, done := e.sendToParent(ctx, r, cacheable, extra)
		if done {
			return resp, err
		}
		if !e.parents.direct {
			return nil, errNoParent
		}
		e.parents.directs.Inc()
	}
	if up.pool != nil {
		return e.sendPool(ctx, up, r, cacheable, extra) // pool.go
	}
	out, err := e.originRequest(ctx, up, r, cacheable)
	if err != nil {
		return nil, err
	}
	for k, v := range extra {
		out.Header[k] = v
	}
	return e.doOrigin(ctx, up, out)
}

// sendToParent tries r's parents in its key's order, passing over those known down. A parent
// that can't be talked to (unreachable) is marked down and the next one tried (GET and HEAD
// only: a body can be sent once); any other answer or error is the request's. done is false
// when no parent could take the request.
func (e *Edge) sendToParent(ctx context.Context, r *http.Request, cacheable bool, extra http.Header) (resp *http.Response, err error, done bool) {
	resend := r.Method == http.MethodGet || r.Method == http.MethodHead
	for _, p := range e.parents.rank(e.keyOf(r)) {
		if !p.healthy.Load() {
			continue
		}
		out, err := e.originRequest(ctx, p.up, r, cacheable)
		if err != nil {
			return nil, err, true
		}
		for k, v := range extra {
			out.Header[k] = v
		}
		resp, err := e.doOrigin(ctx, p.up, out)
		if err == nil {
			p.ok.Inc()
			return resp, nil, true
		}
		if ctx.Err() != nil || !unreachable(err) {
			return nil, err, true
		}
		p.failed.Inc()
		e.parents.setHealth(p, err)
		if !resend {
			return nil, err, true
		}
	}
	return nil, nil, false
}

// unreachable reports whether err means the parent could not be talked to — connection
// refused, reset or closed before a response head, TLS handshake failed — rather than that it
// was slow: the request got no answer from it, so another parent may take it. (A slow parent
// is left alone: it is slow because its origin is, and another would wait for the same
// origin. Its origin's failures come back as responses, 502 and such, never as errors here.)
func unreachable(err error) bool {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return false
	}
	return true
}

// The loop guard (RFC 8586): every request this edge sends upstream carries a CDN-Loop member
// naming this process; a request that comes back with it has gone round a loop of
// misconfigured parents or origins, and is refused before it can join its own fill.
// Random per process: nodes of one cluster share a name more often than not.

// maxHops bounds the reel members a request may carry: a loop through nodes that can't
// recognise their own mark (older versions, proxies that rewrite it) still ends.
const maxHops = 8

func newLoopID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// looped reports whether a request's CDN-Loop field lines show it has passed this edge
// already, or more reel nodes than any sane tiering has.
func (e *Edge) looped(lines []string) bool {
	hops := 0
	for _, line := range lines {
		if strings.Contains(line, e.loopID) {
			return true
		}
		for member := range strings.SplitSeq(line, ",") {
			id, _, _ := strings.Cut(member, ";")
			if strings.TrimSpace(id) == cdnID {
				hops++
			}
		}
	}
	return hops >= maxHops
}

// cdnID is the cdn-id of the CDN-Loop members reel adds (RFC 8586 §2).
const cdnID = "reel"

// serveHealth answers health checks: 200 while the edge serves, 503 once it is closing, so
// that children stop sending to a parent being shut down.
func (e *Edge) serveHealth(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if e.closing.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "closing\n")
		return
	}
	io.WriteString(w, "ok\n")
}
