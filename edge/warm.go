package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reelvideo/reel/manifest"
)

// Warm-up (README "Warm-up"): an admin call fills the cache ahead of viewers — for a premiere,
// or a new node before it takes traffic — with a list of URLs, or with everything one manifest
// references (every playlist, init segment and segment: manifest.Discover), a few at a time.
//
//	POST   /warm        {"urls": [...]} or {"manifest": URL}, optional "concurrency" → 202, Location: /warm/ID
//	GET    /warm        every job remembered, newest first
//	GET    /warm/ID     one job's progress
//	DELETE /warm/ID     cancel it
//
// Each URL goes through the request flow as a client's GET would (warm_url.go). Every part is
// bounded: URLs per job, manifest size, jobs at once, each fetch's time and the job's; jobs end
// when the edge closes.

// Warm-up bounds.
const (
	warmMaxURLs        = 100_000          // URLs per job, given or discovered
	warmMaxRequest     = 16 << 20         // bytes of a POST /warm body (100k URLs fit)
	warmMaxManifest    = 32 << 20         // bytes of one playlist or MPD read
	warmMaxRunning     = 4                // jobs running at once
	warmKeptJobs       = 32               // finished jobs remembered for GET (and /stats)
	warmConcurrency    = 8                // URLs warmed at once by default
	warmMaxConcurrency = 64               // … at most
	warmFetchTimeout   = 2 * time.Minute  // one URL
	warmJobTimeout     = 4 * time.Hour    // one job
	warmMaxErrors      = 10               // errors a report keeps (the first ones)
	warmMaxDepth       = 3                // playlists of playlists (master → media is 1)
	warmCancelWait     = 10 * time.Second // DELETE waits this long for the job to stop
)

// Job states.
const (
	warmRunning   = "running"
	warmDone      = "done"      // every URL was tried (some may have failed)
	warmCancelled = "cancelled" // by DELETE, at the job time limit, or as the edge closed (reason says which)
	warmFailedJob = "failed"    // the manifest could not be read: nothing else to warm
)

// warmer runs an edge's warm-up jobs.
type warmer struct {
	e   *Edge
	log *slog.Logger

	ctx    context.Context // cancelled by close: every job stops
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	// The bounds of a job: warmMaxURLs, warmMaxManifest, warmFetchTimeout (tests lower them).
	maxURLs, maxManifest int
	fetchTimeout         time.Duration

	urls *prometheus.CounterVec // reel_edge_warm_urls_total{result}
	jobs prometheus.Gauge       // reel_edge_warm_jobs_running

	mu     sync.Mutex
	byID   map[string]*warmJob
	order  []*warmJob // oldest first
	closed bool
}

func newWarmer(e *Edge) *warmer {
	ctx, cancel := context.WithCancelCause(context.Background())
	w := &warmer{
		e: e, log: e.log, ctx: ctx, cancel: cancel, byID: map[string]*warmJob{},
		maxURLs: warmMaxURLs, maxManifest: warmMaxManifest, fetchTimeout: warmFetchTimeout,
		urls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reel_edge_warm_urls_total", Help: "URLs warmed by warm-up jobs, by result: hit (fresh already), filled, not_stored, failed.",
		}, []string{"result"}),
		jobs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reel_edge_warm_jobs_running", Help: "Warm-up jobs running.",
		}),
	}
	for _, r := range []string{warmHit, warmFilled, warmNotStored, warmFailed} {
		w.urls.WithLabelValues(r)
	}
	e.m.reg.MustRegister(w.urls, w.jobs)
	return w
}

// close stops every job and waits for their workers.
func (w *warmer) close() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cancel(errWarmClosing)
	w.wg.Wait()
}

// warmJob is one warm-up and its progress.
type warmJob struct {
	id          string
	maxURLs     int
	manifest    string // the manifest walked, "" for a list of URLs
	concurrency int
	cancel      context.CancelCauseFunc
	done        chan struct{} // closed when its workers have stopped

	mu        sync.Mutex
	state     string
	reason    string // why it was cancelled, or failed
	started   time.Time
	finished  time.Time
	seen      map[string]bool // URLs queued (their count is the job's "urls")
	truncated bool            // more than warmMaxURLs were found
	counts    map[string]int  // by outcome
	bytes     int64
	errors    []WarmError
}

// WarmError is one URL a job could not warm.
type WarmError struct {
	URL   string `json:"url"`
	Error string `json:"error"`
}

// WarmReport is a warm-up job's progress (GET /warm/ID, /stats).
type WarmReport struct {
	ID          string `json:"id"`
	State       string `json:"state"`            // running, done, cancelled, failed
	Reason      string `json:"reason,omitempty"` // why cancelled or failed
	Manifest    string `json:"manifest,omitempty"`
	Concurrency int    `json:"concurrency"`
	// URLs is how many distinct URLs the job has to warm so far (a manifest's grow as its
	// playlists are read); Truncated: more were found than a job takes (warmMaxURLs).
	URLs      int  `json:"urls"`
	Truncated bool `json:"truncated,omitempty"`
	// Done = Hit + Filled + NotStored + Failed.
	Done      int   `json:"done"`
	Hit       int   `json:"hit"`        // fresh in the cache already
	Filled    int   `json:"filled"`     // fetched and stored
	NotStored int   `json:"not_stored"` // answered, not stored (no-store, private, bypass rule…)
	Failed    int   `json:"failed"`
	Bytes     int64 `json:"bytes"` // body bytes read through the edge
	// Errors are the first failures (at most warmMaxErrors).
	Errors   []WarmError `json:"errors"`
	Started  time.Time   `json:"started"`
	Finished *time.Time  `json:"finished,omitempty"`
}

func (j *warmJob) report() WarmReport {
	j.mu.Lock()
	defer j.mu.Unlock()
	r := WarmReport{
		ID: j.id, State: j.state, Reason: j.reason, Manifest: j.manifest, Concurrency: j.concurrency,
		URLs: len(j.seen), Truncated: j.truncated,
		Hit: j.counts[warmHit], Filled: j.counts[warmFilled], NotStored: j.counts[warmNotStored], Failed: j.counts[warmFailed],
		Bytes: j.bytes, Errors: append([]WarmError{}, j.errors...), Started: j.started,
	}
	r.Done = r.Hit + r.Filled + r.NotStored + r.Failed
	if !j.finished.IsZero() {
		f := j.finished
		r.Finished = &f
	}
	return r
}

// queue marks u as a URL of the job; false when it was already, or the job is full.
func (j *warmJob) queue(u string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.seen[u] {
		return false
	}
	if len(j.seen) >= j.maxURLs {
		j.truncated = true
		return false
	}
	j.seen[u] = true
	return true
}

// record counts one URL's outcome.
func (j *warmJob) record(u string, res warmResult, err error) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.bytes += res.bytes
	if err != nil {
		j.counts[warmFailed]++
		if len(j.errors) < warmMaxErrors {
			j.errors = append(j.errors, WarmError{URL: u, Error: err.Error()})
		}
		return warmFailed
	}
	j.counts[res.outcome]++
	return res.outcome
}

// finish sets the job's final state.
func (j *warmJob) finish(state, reason string, now time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.state, j.reason, j.finished = state, reason, now
}

// warmSpec is a POST /warm body.
type warmSpec struct {
	URLs        []string `json:"urls"`
	Manifest    string   `json:"manifest"`
	Concurrency int      `json:"concurrency"`
}

// errWarmBusy: warmMaxRunning jobs run already.
var errWarmBusy = fmt.Errorf("%d warm-ups are running already (the most at once): wait for one to end or cancel one (DELETE /warm/ID)", warmMaxRunning)

// Causes of a job's cancellation, its report's reason.
var (
	errWarmDeleted  = errors.New("cancelled by DELETE")
	errWarmClosing  = errors.New("the edge is shutting down")
	errWarmDeadline = fmt.Errorf("over the time a job may take (%s)", warmJobTimeout)
)

// start begins a job for spec (validated).
func (w *warmer) start(spec warmSpec) (*warmJob, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, errWarmClosing
	}
	running := 0
	for _, j := range w.order {
		if j.report().State == warmRunning {
			running++
		}
	}
	if running >= warmMaxRunning {
		return nil, errWarmBusy
	}
	ctx, cancel := context.WithCancelCause(w.ctx)
	ctx, timeout := context.WithTimeoutCause(ctx, warmJobTimeout, errWarmDeadline)
	j := &warmJob{
		id: newPurgeID(), maxURLs: w.maxURLs, manifest: spec.Manifest, concurrency: spec.Concurrency, cancel: cancel,
		done: make(chan struct{}), state: warmRunning, started: w.e.now(),
		seen: map[string]bool{}, counts: map[string]int{},
	}
	w.byID[j.id] = j
	w.order = append(w.order, j)
	w.forget()
	w.jobs.Inc()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(j.done)
		defer w.jobs.Dec()
		defer cancel(nil)
		defer timeout()
		w.run(ctx, j, spec)
	}()
	return j, nil
}

// forget drops the oldest finished jobs past warmKeptJobs (running ones are kept: at most
// warmMaxRunning).
func (w *warmer) forget() {
	for i := 0; len(w.order) > warmKeptJobs && i < len(w.order); {
		if j := w.order[i]; j.report().State != warmRunning {
			delete(w.byID, j.id)
			w.order = append(w.order[:i], w.order[i+1:]...)
			continue
		}
		i++
	}
}

func (w *warmer) job(id string) *warmJob {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.byID[id]
}

// reports are every remembered job's, newest first.
func (w *warmer) reports() []WarmReport {
	w.mu.Lock()
	jobs := append([]*warmJob{}, w.order...)
	w.mu.Unlock()
	out := make([]WarmReport, 0, len(jobs))
	for i := len(jobs) - 1; i >= 0; i-- {
		out = append(out, jobs[i].report())
	}
	return out
}

// warmItem is a URL to warm; manifest: read it, and warm what it references too.
type warmItem struct {
	url      string
	manifest bool
	depth    int
}

// run warms the job's URLs, concurrency at a time, until they are all done or ctx ends.
func (w *warmer) run(ctx context.Context, j *warmJob, spec warmSpec) {
	q := newWarmQueue()
	stop := context.AfterFunc(ctx, q.stop)
	defer stop()
	if spec.Manifest != "" {
		j.queue(spec.Manifest)
		q.push(warmItem{url: spec.Manifest, manifest: true})
	} else {
		for _, u := range spec.URLs {
			if j.queue(u) {
				q.push(warmItem{url: u})
			}
		}
	}
	var rootErr error
	var rootMu sync.Mutex
	var wg sync.WaitGroup
	for range j.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				it, ok := q.pop()
				if !ok || ctx.Err() != nil {
					// (The queue stops once ctx ends, but from another goroutine: an item
					// popped meanwhile must not start a fill, which nothing would cancel.)
					return
				}
				err := w.warmOne(ctx, j, it, q)
				if err != nil && it.url == spec.Manifest && it.depth == 0 && spec.Manifest != "" {
					rootMu.Lock()
					rootErr = err
					rootMu.Unlock()
				}
				q.finish()
			}
		}()
	}
	wg.Wait()
	state, reason := warmDone, ""
	switch {
	case ctx.Err() != nil:
		state, reason = warmCancelled, context.Cause(ctx).Error()
	case rootErr != nil:
		state, reason = warmFailedJob, "manifest "+spec.Manifest+": "+rootErr.Error()
	}
	j.finish(state, reason, w.e.now())
	r := j.report()
	w.log.Info("warm-up ended", "id", j.id, "state", r.State, "reason", r.Reason, "urls", r.URLs,
		"hit", r.Hit, "filled", r.Filled, "not_stored", r.NotStored, "failed", r.Failed, "bytes", r.Bytes)
}

// warmOne warms it and, for a manifest, queues what it references; the error is the item's.
func (w *warmer) warmOne(ctx context.Context, j *warmJob, it warmItem, q *warmQueue) error {
	fctx, cancel := context.WithTimeoutCause(ctx, w.fetchTimeout, fmt.Errorf("timed out after %s", w.fetchTimeout))
	defer cancel()
	keep := 0
	if it.manifest {
		keep = w.maxManifest
	}
	res, err := w.e.warmURL(fctx, it.url, keep)
	if ctx.Err() != nil {
		return ctx.Err() // the job is ending: not this URL's failure
	}
	if err == nil && it.manifest {
		err = w.discover(j, it, res.body, q)
	}
	w.urls.WithLabelValues(j.record(it.url, res, err)).Inc()
	return err
}

// discover queues what the manifest at it (its body given) references.
func (w *warmer) discover(j *warmJob, it warmItem, body []byte, q *warmQueue) error {
	base, err := url.Parse(it.url)
	if err != nil {
		return err
	}
	d, err := manifest.Discover(body, base, w.maxURLs)
	if err != nil {
		return err
	}
	if d.Truncated {
		j.mu.Lock()
		j.truncated = true
		j.mu.Unlock()
	}
	for _, u := range d.Playlists {
		if it.depth+1 <= warmMaxDepth && j.queue(u) {
			q.push(warmItem{url: u, manifest: true, depth: it.depth + 1})
		}
	}
	for _, u := range d.Resources {
		if j.queue(u) {
			q.push(warmItem{url: u, depth: it.depth + 1})
		}
	}
	return nil
}

// warmQueue is a job's URLs waiting for a worker. It ends (pop reports false) when every URL
// pushed is finished — a manifest's pushes what it references before it finishes — or when
// stopped.
type warmQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	items   []warmItem
	head    int
	open    int // pushed and not finished
	stopped bool
}

func newWarmQueue() *warmQueue {
	q := &warmQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *warmQueue) push(it warmItem) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return
	}
	q.items = append(q.items, it)
	q.open++
	q.cond.Signal()
}

// pop waits for the next item; false when the queue has ended.
func (q *warmQueue) pop() (warmItem, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == len(q.items) && !q.stopped && q.open > 0 {
		q.cond.Wait()
	}
	if q.stopped || q.head == len(q.items) {
		return warmItem{}, false
	}
	it := q.items[q.head]
	q.items[q.head] = warmItem{}
	q.head++
	return it, true
}

// finish: a popped item is done (after it pushed what it references).
func (q *warmQueue) finish() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.open--
	if q.open == 0 {
		q.cond.Broadcast()
	}
}

// stop ends the queue now: the items waiting are dropped.
func (q *warmQueue) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
	q.items, q.head = nil, 0
	q.cond.Broadcast()
}

// serveWarmStart: POST /warm.
func (e *Edge) serveWarmStart(w http.ResponseWriter, r *http.Request) {
	spec, status, bad := e.parseWarm(r)
	if bad != "" {
		httpError(w, status, bad)
		return
	}
	j, err := e.warm.start(spec)
	switch {
	case errors.Is(err, errWarmBusy):
		httpError(w, http.StatusTooManyRequests, err.Error(), "Retry-After", "10")
		return
	case err != nil:
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	e.log.Info("warm-up started", "id", j.id, "manifest", spec.Manifest, "urls", len(spec.URLs), "concurrency", spec.Concurrency)
	w.Header().Set("Location", "/warm/"+j.id)
	writeJSONStatus(w, http.StatusAccepted, j.report())
}

// parseWarm reads and checks a POST /warm body: the status and reason of its refusal, if any.
func (e *Edge) parseWarm(r *http.Request) (warmSpec, int, string) {
	var spec warmSpec
	body, err := io.ReadAll(io.LimitReader(r.Body, warmMaxRequest+1))
	switch {
	case err != nil:
		return spec, http.StatusBadRequest, "reading the body: " + err.Error()
	case len(body) > warmMaxRequest:
		return spec, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", warmMaxRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return spec, http.StatusBadRequest, `body must be JSON: {"urls": [...]} or {"manifest": "http://host/path"}, optional "concurrency": ` + err.Error()
	}
	switch {
	case (len(spec.URLs) > 0) == (spec.Manifest != ""):
		return spec, http.StatusBadRequest, `give "urls" (a non-empty list) or "manifest", not both`
	case len(spec.URLs) > e.warm.maxURLs:
		return spec, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d urls: at most %d per job", len(spec.URLs), e.warm.maxURLs)
	case spec.Concurrency < 0 || spec.Concurrency > warmMaxConcurrency:
		return spec, http.StatusBadRequest, fmt.Sprintf("concurrency must be 1 to %d (default %d)", warmMaxConcurrency, warmConcurrency)
	case spec.Concurrency == 0:
		spec.Concurrency = warmConcurrency
	}
	check := spec.URLs
	if spec.Manifest != "" {
		check = []string{spec.Manifest}
	}
	hosts := map[string]bool{}
	for _, u := range check {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return spec, http.StatusBadRequest, strconv.Quote(u) + " is not an absolute http or https URL"
		}
		if hosts[p.Host] {
			continue
		}
		if err := e.checkWarmHost(u); err != nil {
			return spec, http.StatusBadRequest, err.Error()
		}
		hosts[p.Host] = true
	}
	return spec, 0, ""
}

// serveWarmReport: GET /warm/ID.
func (e *Edge) serveWarmReport(w http.ResponseWriter, r *http.Request) {
	j := e.warm.job(r.PathValue("id"))
	if j == nil {
		httpError(w, http.StatusNotFound, "no warm-up with this id (or it was forgotten)")
		return
	}
	writeJSON(w, j.report())
}

// serveWarmList: GET /warm.
func (e *Edge) serveWarmList(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{"jobs": e.warm.reports()})
}

// serveWarmCancel: DELETE /warm/ID cancels the job and answers its report once it stopped
// (or after warmCancelWait, still stopping).
func (e *Edge) serveWarmCancel(w http.ResponseWriter, r *http.Request) {
	j := e.warm.job(r.PathValue("id"))
	if j == nil {
		httpError(w, http.StatusNotFound, "no warm-up with this id (or it was forgotten)")
		return
	}
	j.cancel(errWarmDeleted)
	t := time.NewTimer(warmCancelWait)
	defer t.Stop()
	select {
	case <-j.done:
	case <-t.C:
	case <-r.Context().Done():
		return
	}
	writeJSON(w, j.report())
}

// warmStats is the warm-up part of /stats: the jobs running and the recent ones.
func (e *Edge) warmStats() map[string]any {
	reports := e.warm.reports()
	running := 0
	for _, r := range reports {
		if r.State == warmRunning {
			running++
		}
	}
	return map[string]any{"running": running, "jobs": reports}
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
