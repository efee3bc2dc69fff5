package edge

import (
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

// parentSet is the configured parents, their health and the loop that checks it.
type parentSet struct {
	list     []*parent
	direct   bool // go to the origin when no parent is healthy
	path     string
	interval time.Duration
	log      *slog.Logger
	directs  prometheus.Counter // requests sent to the origin because no parent was healthy

	stop context.CancelFunc
	done chan struct{}
}

// newParentSet builds the parents of cfg, their connection pools made by newUpstream.
func newParentSet(cfg Config, m *metrics, log *slog.Logger, newUpstream func(Origin) (*upstream, error)) (*parentSet, error) {
	s := &parentSet{direct: cfg.Parents.DirectFallback, path: cfg.Parents.HealthPath,
		interval: cfg.Parents.HealthInterval, log: log,
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_edge_parent_requests_total", Help: "Requests sent to parents (the shield tier), by parent and result (error: no connection; the next owner was tried).",
	}, []string{"parent", "result"})
	s.directs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reel_edge_parent_direct_total", Help: "Requests that went to the origin because no parent was healthy.",
	})
	m.reg.MustRegister(requests, s.directs)
	for _, raw := range cfg.Parents.URLs {
		u, _ := url.Parse(raw) // validated
		u.Path = ""
		up, err := newUpstream(Origin{URL: u.String(), Connection: cfg.Parents.Connection})
		if err != nil {
			return nil, fmt.Errorf("parents: %w", err)
		}
		up.parent = true
		p := &parent{
			up: up, probe: probeClient(up, cfg.Parents.HealthInterval), id: u.String(), seed: xxhash.Sum64String(u.String()),
			ok: requests.WithLabelValues(u.String(), "ok"), failed: requests.WithLabelValues(u.String(), "error"),
		}
		p.health = newHealth(log, "parent", "parent", u.String(), "its objects go to their next owner", 1, 0, true)
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "reel_edge_parent_up", Help: "1 while a parent passes its health checks, else 0.",
			ConstLabels: prometheus.Labels{"parent": u.String()},
		}, func() float64 {
			if p.healthy.Load() {
				return 1
			}
			return 0
		}))
		s.list = append(s.list, p)
	}
	return s, nil
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

// start runs the health checks until stop.
func (s *parentSet) start() {
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
	if s.stop != nil {
		s.stop()
		<-s.done
	}
}

// checkAll probes every parent at once and records the results.
func (s *parentSet) checkAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range s.list {
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
	for _, p := range s.list {
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
	for i := range e.rules {
		if e.rules[i].Parent != nil && strings.HasPrefix(r.URL.Path, e.rules[i].PathPrefix) {
			return *e.rules[i].Parent
		}
	}
	return true
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
	for _, p := range e.parents.rank(e.keyer.Key(r)) {
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
