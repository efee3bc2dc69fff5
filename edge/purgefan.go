package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A cluster purge (POST /purge?…&cluster=1[&id=ID]) is applied here, then forwarded to every
// member of the cluster as the same purge with its id and without cluster=1: a forwarded purge
// is applied locally only, so the fan-out can't loop. Every node remembers the ids it applied
// (purgeIDs): a repeat is confirmed as "already" and changes nothing. Members that fail are
// retried in the background with backoff for Cluster.RetryFor; GET /purge/ID tells who
// confirmed so far.

// purge id bounds: ids remembered per node, and for how long; cluster purges whose reports
// this node keeps.
const (
	maxPurgeIDs  = 100000
	purgeIDTTL   = time.Hour
	maxPurgeJobs = 1000
	maxPurgeID   = 128
)

// clusterPurge is a node's side of cluster purges: the ids it applied, the purges it fanned
// out, and the members it forwards them to.
type clusterPurge struct {
	cfg     Cluster
	token   string
	name    string
	log     *slog.Logger
	members *membership
	ids     *purgeIDs
	client  *http.Client
	now     func() time.Time

	forwarded, failed, retried prometheus.Counter

	mu    sync.Mutex
	jobs  map[string]*purgeJob
	order []string // job ids, oldest first (bounded by maxPurgeJobs)

	ctx    context.Context // cancelled by close: retries stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// clusterSlot holds the edge's clusterPurge, made with the admin token by AdminHandler.
type clusterSlot struct {
	once sync.Once
	c    *clusterPurge
}

func (e *Edge) clusterPurger(token string) *clusterPurge {
	e.cluster.once.Do(func() {
		cfg := e.cfg.Cluster.withDefaults()
		ctx, cancel := context.WithCancel(context.Background())
		c := &clusterPurge{
			cfg: cfg, token: token, name: e.name, log: e.log,
			members: newMembership(cfg, e.log),
			ids:     newPurgeIDs(maxPurgeIDs, purgeIDTTL),
			// Peers are admin listeners: no proxy from the environment, one timeout per call.
			client: &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
			now:    time.Now,
			jobs:   map[string]*purgeJob{},
			ctx:    ctx, cancel: cancel,
			forwarded: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "reel_edge_cluster_purges_forwarded_total", Help: "Cluster purges forwarded to a member and confirmed by it.",
			}),
			failed: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "reel_edge_cluster_purge_failures_total", Help: "Forwarded cluster purges that failed (each attempt).",
			}),
			retried: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "reel_edge_cluster_purge_retries_total", Help: "Forwarded cluster purges sent again after a failure.",
			}),
		}
		e.m.reg.MustRegister(c.forwarded, c.failed, c.retried)
		c.members.start()
		e.cluster.c = c
	})
	return e.cluster.c
}

// close stops the retries and the DNS refresh.
func (c *clusterPurge) close() {
	c.cancel()
	c.wg.Wait()
	c.members.close()
}

// purgeJob is one cluster purge this node fanned out, and its report.
type purgeJob struct {
	id      string
	query   url.Values // what members are sent: the target, mode and id
	started time.Time
	// sent is closed once every member has been tried once: a repeat of the purge made
	// meanwhile answers with that report, not an empty one.
	sent chan struct{}

	mu    sync.Mutex
	local purgeResult
	nodes map[string]*nodeReport
}

// nodeReport is one member's part in a cluster purge.
type nodeReport struct {
	// State: confirmed (applied now), already (it had applied this id), pending (failed,
	// being retried) or failed (retries gave up).
	State    string `json:"state"`
	Purged   int    `json:"purged"`
	Attempts int    `json:"attempts"`
	Error    string `json:"error,omitempty"`
}

// purgeReport is the answer to a cluster purge and to GET /purge/ID.
type purgeReport struct {
	ID     string                 `json:"id"`
	Node   string                 `json:"node"`   // this node's name
	Purged int                    `json:"purged"` // objects purged here
	Mode   string                 `json:"mode"`
	Nodes  map[string]*nodeReport `json:"nodes"` // by member admin URL
	// Confirmed counts the members that applied it (confirmed or already); Complete is true
	// once none is pending.
	Confirmed int  `json:"confirmed"`
	Pending   int  `json:"pending"`
	Failed    int  `json:"failed"`
	Complete  bool `json:"complete"`
}

func (j *purgeJob) report(node string) purgeReport {
	j.mu.Lock()
	defer j.mu.Unlock()
	r := purgeReport{ID: j.id, Node: node, Purged: j.local.n, Mode: j.local.mode, Nodes: map[string]*nodeReport{}}
	for peer, n := range j.nodes {
		c := *n
		r.Nodes[peer] = &c
		switch n.State {
		case "confirmed", "already":
			r.Confirmed++
		case "pending":
			r.Pending++
		case "failed":
			r.Failed++
		}
	}
	r.Complete = r.Pending == 0
	return r
}

func (j *purgeJob) set(peer string, f func(n *nodeReport)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f(j.nodes[peer])
}

// newPurgeID is a random id for a cluster purge the client gave none.
func newPurgeID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validPurgeID: ids travel in URLs and logs.
func validPurgeID(id string) bool {
	if id == "" || len(id) > maxPurgeID {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// job returns the cluster purge id this node started, if it still remembers it.
func (c *clusterPurge) job(id string) *purgeJob {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jobs[id]
}

// begin records a new cluster purge; it returns the existing one (and false) for a repeat.
func (c *clusterPurge) begin(id string, q url.Values) (*purgeJob, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if j := c.jobs[id]; j != nil {
		return j, false
	}
	if len(c.order) >= maxPurgeJobs {
		delete(c.jobs, c.order[0])
		c.order = c.order[1:]
	}
	j := &purgeJob{id: id, query: q, started: c.now(), nodes: map[string]*nodeReport{}, sent: make(chan struct{})}
	c.jobs[id] = j
	c.order = append(c.order, id)
	return j, true
}

// fanOut forwards j to every member (at most Concurrency at once) and returns when each has
// answered or failed once; the failed ones are then retried in the background.
func (c *clusterPurge) fanOut(j *purgeJob) {
	peers := c.members.members()
	j.mu.Lock()
	for _, p := range peers {
		j.nodes[p] = &nodeReport{State: "pending"}
	}
	j.mu.Unlock()
	sem := make(chan struct{}, c.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if !c.attempt(j, p) {
				c.retryLater(j, p)
			}
		}()
	}
	wg.Wait()
}

// attempt sends j to peer once and records the outcome; true when the peer confirmed.
func (c *clusterPurge) attempt(j *purgeJob, peer string) bool {
	res, err := c.forward(peer, j.query)
	j.set(peer, func(n *nodeReport) {
		n.Attempts++
		if err != nil {
			n.Error = err.Error()
			return
		}
		n.State, n.Purged, n.Error = "confirmed", res.Purged, ""
		if res.Already {
			n.State = "already"
		}
	})
	if err != nil {
		c.failed.Inc()
		return false
	}
	c.forwarded.Inc()
	return true
}

// forwardAnswer is what a member answers a forwarded purge.
type forwardAnswer struct {
	Purged  int  `json:"purged"`
	Already bool `json:"already"`
}

func (c *clusterPurge) forward(peer string, q url.Values) (forwardAnswer, error) {
	var a forwardAnswer
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, peer+"/purge?"+q.Encode(), nil)
	if err != nil {
		return a, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Reel-Purge-From", c.name)
	resp, err := c.client.Do(req)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return a, err
	}
	if resp.StatusCode != http.StatusOK {
		line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		return a, fmt.Errorf("HTTP %d: %s", resp.StatusCode, line)
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("answer: %w", err)
	}
	return a, nil
}

// retryLater tries peer again, waiting RetryInterval then doubling (up to 30s), until it
// confirms, RetryFor has passed since the purge began (it is then reported failed), or the
// edge closes.
func (c *clusterPurge) retryLater(j *purgeJob, peer string) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		wait := c.cfg.RetryInterval
		deadline := j.started.Add(c.cfg.RetryFor)
		for {
			left := deadline.Sub(c.now())
			if left <= 0 {
				j.set(peer, func(n *nodeReport) { n.State = "failed" })
				c.log.Warn("cluster purge not confirmed; giving up", "id", j.id, "peer", peer)
				return
			}
			t := time.NewTimer(min(wait, left))
			select {
			case <-c.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if c.now().After(deadline) {
				continue // reported failed above
			}
			c.retried.Inc()
			if c.attempt(j, peer) {
				c.log.Info("cluster purge confirmed on retry", "id", j.id, "peer", peer)
				return
			}
			wait = min(2*wait, maxRetryInterval)
		}
	}()
}

// errPurgeID is the answer to a bad id=.
var errPurgeID = errors.New("id must be 1 to 128 letters, digits, '-', '_' or '.'")

// serveClusterPurge applies the purge in q here and fans it out; the answer is the report
// (200 when every member confirmed, 202 while some are retried).
func (e *Edge) serveClusterPurge(w http.ResponseWriter, r *http.Request, c *clusterPurge, q url.Values, t purgeTarget) {
	id := q.Get("id")
	if id == "" {
		id = newPurgeID()
	}
	fq := t.query()
	fq.Set("id", id)
	j, fresh := c.begin(id, fq)
	if fresh {
		res := purgeResult{mode: t.mode}
		if c.ids.add(id, c.now()) {
			res = e.applyPurge(t)
		}
		j.mu.Lock()
		j.local = res
		j.mu.Unlock()
		c.fanOut(j)
		close(j.sent)
	}
	select {
	case <-j.sent:
	case <-r.Context().Done():
		return // the client left
	}
	writeReport(w, j.report(c.name), true)
}

// writeReport sends r; accepted: 202 while members are pending (the answer to the purge).
func writeReport(w http.ResponseWriter, r purgeReport, accepted bool) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if accepted && !r.Complete {
		w.WriteHeader(http.StatusAccepted)
	}
	json.NewEncoder(w).Encode(r)
}

// servePurgeReport: GET /purge/{id}, the current report of a cluster purge started here.
func (e *Edge) servePurgeReport(c *clusterPurge) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		j := c.job(r.PathValue("id"))
		if j == nil {
			httpError(w, http.StatusNotFound, "no cluster purge with this id started here (or it was forgotten)")
			return
		}
		writeReport(w, j.report(c.name), false)
	}
}
