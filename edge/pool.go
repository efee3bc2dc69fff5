package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// An origin pool (Origin.URLs): several members serving the same content. Each request goes
// to one available member, chosen at random by weight; a GET or HEAD that fails on one —
// connect error, reset, first-byte timeout, 5xx — before anything of it reached the client
// is retried on another, within the pool's retry budget; a body that breaks off continues from
// another member when they share its strong ETag (poolresume.go). Members are judged by their
// requests (health.go) and, when configured, by probes.

// poolMember is one URL of a pool, with its own connections.
type poolMember struct {
	up     *upstream
	id     string // its URL (redacted), for metrics and logs
	weight int
	seed   uint64 // a digest of its URL: its part of every rendezvous score (pick)
	h      *health
	probe  *http.Client // nil without health_check
}

// originPool is the members of one origin and what they share.
type originPool struct {
	name    string
	members []*poolMember
	budget  *retryBudget
	check   *HealthCheck
	now     func() time.Time

	retries, exhausted prometheus.Counter

	stop context.CancelFunc
	done chan struct{}
}

// poolMetrics are the pools' series, registered once per edge.
type poolMetrics struct {
	retries, exhausted *prometheus.CounterVec
}

func newPoolMetrics(reg *prometheus.Registry) *poolMetrics {
	pm := &poolMetrics{
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reel_edge_origin_retries_total", Help: "Requests retried on another member of an origin pool after a failure.",
		}, []string{"origin"}),
		exhausted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reel_edge_origin_retry_budget_exhausted_total", Help: "Failed requests not retried because the origin pool's retry budget was spent.",
		}, []string{"origin"}),
	}
	reg.MustRegister(pm.retries, pm.exhausted)
	return pm
}

// newPool builds the pool of a validated origin o whose requests look like base's (host
// header, uploads): each member gets its own connections from newUpstream.
func (e *Edge) newPool(o Origin, label string) (*originPool, error) {
	if e.poolMetrics == nil {
		e.poolMetrics = newPoolMetrics(e.m.reg)
	}
	p := &originPool{name: label, check: o.HealthCheck, now: e.now,
		budget:  newRetryBudget(o.RetryBudget),
		retries: e.poolMetrics.retries.WithLabelValues(label), exhausted: e.poolMetrics.exhausted.WithLabelValues(label),
	}
	for _, pm := range o.URLs {
		mo := o
		mo.URL, mo.URLs = pm.URL, nil
		up, err := e.newUpstream(mo)
		if err != nil {
			return nil, err
		}
		u, _ := url.Parse(pm.URL) // validated
		m := &poolMember{up: up, id: u.Redacted(), weight: max(pm.Weight, 1), seed: xxhash.Sum64String(pm.URL),
			h: newHealth(e.log, "origin member", "member", label+" "+u.Redacted(), "requests go to the other members", o.MaxFails, o.FailTimeout, o.HealthCheck != nil)}
		if o.HealthCheck != nil {
			m.probe = probeClient(up, o.HealthCheck.Interval)
			m.probe.Timeout = o.HealthCheck.Timeout
		}
		e.m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "reel_edge_origin_member_up", Help: "1 while a member of an origin pool takes requests, else 0.",
			ConstLabels: prometheus.Labels{"origin": label, "member": m.id},
		}, func() float64 {
			if m.h.healthy.Load() {
				return 1
			}
			return 0
		}))
		p.members = append(p.members, m)
	}
	if p.check != nil {
		p.start(e.log)
	}
	return p, nil
}

// pick chooses the member for the object whose path digest is key among the available ones
// not in tried, by weighted rendezvous hashing (highest random weight): each member scores
// weight / -ln(u), u uniform in (0, 1) from the key and the member's seed, and the highest
// wins. So an object keeps to one member while that member is up — every reload of a live
// playlist, every request for a segment — and only the objects of a member that fails move,
// spread over the others by weight; over many objects the shares follow the weights. Chosen
// at random per request instead, redundant live origins' playlists alternated between
// instances whose windows differed (the one started later lists fewer old segments): hls.js
// took a media sequence going back for a jump in time and stopped loading parts (its stall in
// TestBrowserLiveRedundantFailover). When none is available and nothing was tried yet, it
// chooses among all (better a request to a member thought down than a certain error); nil
// when no member is left.
func (p *originPool) pick(key uint64, tried []*poolMember) *poolMember {
	now := p.now()
	var buf [8]*poolMember
	cands := buf[:0]
	for _, m := range p.members {
		if !containsMember(tried, m) && m.h.available(now) {
			cands = append(cands, m)
		}
	}
	if len(cands) == 0 && len(tried) == 0 {
		cands = append(cands, p.members...)
	}
	if len(cands) == 0 {
		return nil
	}
	var best *poolMember
	bestScore := math.Inf(-1)
	for _, m := range cands {
		// u in (0, 1) from the top 53 bits of key and seed mixed (mix64, as parents.go ranks).
		u := (float64(mix64(key^m.seed)>>11) + 0.5) / (1 << 53)
		if s := float64(m.weight) / -math.Log(u); s > bestScore {
			best, bestScore = m, s
		}
	}
	best.h.chosen(now)
	return best
}

// pickKey is the digest pick places r's object by: its path, without the query (a live
// playlist's blocking reloads differ only there) — the path as the client asked it, before
// any strip_prefix.
func pickKey(r *http.Request) uint64 { return xxhash.Sum64String(r.URL.Path) }

func containsMember(list []*poolMember, m *poolMember) bool {
	for _, x := range list {
		if x == m {
			return true
		}
	}
	return false
}

// sendPool sends r to a member of up's pool, and a GET or HEAD that failed there to another
// while the budget allows. The answer of the last attempt is the request's.
func (e *Edge) sendPool(ctx context.Context, up *upstream, r *http.Request, cacheable bool, extra http.Header) (*http.Response, error) {
	p := up.pool
	p.budget.request(p.now())
	// A body can be sent once (GET and HEAD send none: originRequest); nothing of the
	// response has reached the client yet — it is returned from here.
	resend := r.Method == http.MethodGet || r.Method == http.MethodHead
	var tried []*poolMember
	key := pickKey(r)
	m := p.pick(key, nil) // never nil: a first attempt may go to any member
	for {
		at := *up // the origin's request settings (strip, host header) with the member's URL and connections
		at.url, at.client, at.blocking = m.up.url, m.up.client, m.up.blocking
		out, err := e.originRequest(ctx, &at, r, cacheable)
		if err != nil {
			return nil, err
		}
		for k, v := range extra {
			out.Header[k] = v
		}
		resp, err := e.doOrigin(ctx, &at, out)
		if ctx.Err() != nil || errors.Is(err, errOriginQueue) {
			// The client left, or the member is busy rather than failing: no verdict.
			return resp, err
		}
		why := memberFailure(resp, err)
		if why == nil {
			m.h.passed()
			e.resumable(ctx, up, r, cacheable, extra, m, resp) // poolresume.go
			return resp, nil
		}
		m.h.failed(why, p.now())
		tried = append(tried, m)
		if !resend {
			return resp, err
		}
		next := p.pick(key, tried)
		if next == nil {
			return resp, err
		}
		if !p.budget.retry(p.now()) {
			p.exhausted.Inc()
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
			resp.Body.Close()
		}
		p.retries.Inc()
		e.log.Debug("origin request retried on another member", "origin", p.name, "member", m.id, "err", why)
		m = next
	}
}

// memberFailure is why an attempt counts against its member (nil: it doesn't): no response
// (connect error, reset, TLS failure, first-byte timeout) or a 5xx.
func memberFailure(resp *http.Response, err error) error {
	switch {
	case err != nil:
		return err
	case resp.StatusCode >= 500:
		return errors.New(resp.Status)
	}
	return nil
}

// start runs the probes until close.
func (p *originPool) start(log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	p.stop, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.check.Interval)
		defer t.Stop()
		for {
			var wg sync.WaitGroup
			for _, m := range p.members {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := p.probe(ctx, m)
					if ctx.Err() == nil {
						m.h.set(err == nil, err)
					}
				}()
			}
			wg.Wait()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// probe GETs the health check path of m; a 2xx passes.
func (p *originPool) probe(ctx context.Context, m *poolMember) error {
	target := m.up.url.Scheme + "://" + m.up.url.Host + p.check.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	if hh := m.up.hostHeader; hh != "" && hh != "origin" {
		req.Host = hh
	}
	resp, err := m.probe.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("health check %s: %s", p.check.Path, resp.Status)
	}
	return nil
}

func (p *originPool) close() {
	if p.stop != nil {
		p.stop()
		<-p.done
	}
}

// retryBudget allows retries up to a share of the requests of the last budgetWindow plus
// a floor (Finagle's RetryBudget, Envoy's retry_budget): when every member fails, the pool
// sends its traffic once and a little more, never a multiple of it.
type retryBudget struct {
	percent, min int

	mu      sync.Mutex
	buckets [budgetWindow]budgetBucket
}

// budgetWindow is the window in seconds, one bucket a second.
const budgetWindow = 10

type budgetBucket struct {
	sec             int64
	requests, retry int
}

func newRetryBudget(c RetryBudget) *retryBudget {
	b := &retryBudget{percent: 20, min: 3}
	if c.Percent != nil {
		b.percent = *c.Percent
	}
	if c.MinRetries != nil {
		b.min = *c.MinRetries
	}
	return b
}

// bucket is the current second's bucket, emptied if it held an older second.
func (b *retryBudget) bucket(now time.Time) *budgetBucket {
	sec := now.Unix()
	k := &b.buckets[sec%budgetWindow]
	if k.sec != sec {
		*k = budgetBucket{sec: sec}
	}
	return k
}

// request counts a request.
func (b *retryBudget) request(now time.Time) {
	b.mu.Lock()
	b.bucket(now).requests++
	b.mu.Unlock()
}

// retry takes one retry from the budget; false when none is left.
func (b *retryBudget) retry(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.bucket(now)
	var requests, retries int
	for _, k := range b.buckets {
		if k.sec > now.Unix()-budgetWindow {
			requests += k.requests
			retries += k.retry
		}
	}
	if retries*100 >= b.min*100+requests*b.percent {
		return false
	}
	cur.retry++
	return true
}

// originUpstream is the upstream of a validated origin: its own, or its pool's.
func (e *Edge) originUpstream(o Origin) (*upstream, error) {
	if len(o.URLs) == 0 {
		return e.newUpstream(o)
	}
	label := o.Name
	if label == "" {
		label = o.Host
	}
	p, err := e.newPool(o, label)
	if err != nil {
		return nil, err
	}
	up := *p.members[0].up
	up.pool = p
	return &up, nil
}
