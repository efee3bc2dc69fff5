package edge

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"
)

// Cluster is the set of nodes (edges and shields) a cluster purge reaches: the admin endpoints
// of the static list Peers together with those DNS names, refreshed every Refresh while the
// edge runs, so that a shield added to a Kubernetes headless Service is purged without
// restarting anyone. Forwarded purges carry the admin token this node's own API uses.
type Cluster struct {
	// Peers are admin API URLs (http://edge-2:9091). Listing this node too is harmless: the
	// forwarded purge finds its id already applied.
	Peers []string `yaml:"peers"`
	// DNS names more peers: "_admin._tcp.reel-shield.ns.svc.cluster.local" (a name starting
	// with '_' is looked up as SRV: each target and port is a peer) or
	// "reel-shield.ns.svc.cluster.local:9091" (A/AAAA: each address with that port).
	DNS string `yaml:"dns"`
	// DNSServer, when set (host:port), is asked instead of the system resolver.
	DNSServer string `yaml:"dns_server"`
	// Scheme of the peers found by DNS: http (default) or https.
	Scheme string `yaml:"scheme"`
	// Refresh is how often DNS is asked again (default 30s). A failed lookup keeps the last
	// good answer.
	Refresh time.Duration `yaml:"refresh"`
	// Concurrency bounds the forwarded purges in flight (default 8); Timeout bounds each
	// (default 5s).
	Concurrency int           `yaml:"concurrency"`
	Timeout     time.Duration `yaml:"timeout"`
	// RetryInterval is the wait before a failed node is tried again, doubled after each
	// failure up to 30s (default 1s); RetryFor is how long it is retried before the purge
	// reports it failed (default 10m).
	RetryInterval time.Duration `yaml:"retry_interval"`
	RetryFor      time.Duration `yaml:"retry_for"`
}

// cluster defaults (zero values in Cluster).
const (
	defaultClusterRefresh     = 30 * time.Second
	defaultClusterConcurrency = 8
	defaultClusterTimeout     = 5 * time.Second
	defaultRetryInterval      = time.Second
	defaultRetryFor           = 10 * time.Minute
	maxRetryInterval          = 30 * time.Second
)

func (c Cluster) withDefaults() Cluster {
	if c.Scheme == "" {
		c.Scheme = "http"
	}
	if c.Refresh == 0 {
		c.Refresh = defaultClusterRefresh
	}
	if c.Concurrency == 0 {
		c.Concurrency = defaultClusterConcurrency
	}
	if c.Timeout == 0 {
		c.Timeout = defaultClusterTimeout
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = defaultRetryInterval
	}
	if c.RetryFor == 0 {
		c.RetryFor = defaultRetryFor
	}
	return c
}

func (c Cluster) validate() error {
	for i, p := range c.Peers {
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("cluster.peers[%d]: %q is not an admin API URL (http://host:port)", i, p)
		}
	}
	if err := validateDNS("cluster", c.DNS, c.DNSServer, c.Scheme, c.Refresh); err != nil {
		return err
	}
	switch {
	case c.Refresh < 0 || c.Timeout < 0 || c.RetryInterval < 0 || c.RetryFor < 0:
		return errors.New("cluster.refresh, timeout, retry_interval and retry_for must not be negative")
	case c.Concurrency < 0:
		return errors.New("cluster.concurrency must not be negative")
	}
	return nil
}

// membership is the cluster's current list of peers: the static ones and the last good DNS
// answer (dnsmembers.go).
type membership struct {
	peers []string
	dns   *dnsMembers // nil without cluster.dns
}

func newMembership(cfg Cluster, log *slog.Logger) *membership {
	m := &membership{peers: cfg.Peers}
	if cfg.DNS != "" {
		m.dns = newDNSMembers("cluster", cfg.DNS, cfg.DNSServer, cfg.Scheme, cfg.Refresh, cfg.Timeout, log, nil)
	}
	return m
}

// start looks DNS up once, then every Refresh until close.
func (m *membership) start() {
	if m.dns != nil {
		m.dns.start()
	}
}

func (m *membership) close() {
	if m.dns != nil {
		m.dns.close()
	}
}

// members is the static list ∪ the DNS answer, sorted, without duplicates.
func (m *membership) members() []string {
	var dns []string
	if m.dns != nil {
		dns = m.dns.members()
	}
	return mergePeers(m.peers, dns)
}

// purgeIDs remembers the purge ids a node applied, so that a repeat (a client's retry, a
// forwarded purge arriving twice, this node in its own peer list) is a no-op. Bounded: past
// max ids, the oldest is forgotten; each is forgotten after ttl anyway.
type purgeIDs struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	at    map[string]time.Time
	order []string // insertion order, for expiry and the bound
}

func newPurgeIDs(max int, ttl time.Duration) *purgeIDs {
	return &purgeIDs{ttl: ttl, max: max, at: map[string]time.Time{}}
}

// add records id at now; false when it was already there (and not expired).
func (p *purgeIDs) add(id string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	// order is in time order and holds each remembered id once: expire from the front, and
	// make room for one more.
	for len(p.order) > 0 && (now.Sub(p.at[p.order[0]]) >= p.ttl || len(p.order) >= p.max) {
		if p.order[0] == id && now.Sub(p.at[id]) < p.ttl {
			return false // the oldest is this very id, still remembered
		}
		delete(p.at, p.order[0])
		p.order = p.order[1:]
	}
	if _, ok := p.at[id]; ok {
		return false
	}
	p.at[id] = now
	p.order = append(p.order, id)
	return true
}

// len is how many ids are remembered.
func (p *purgeIDs) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.at)
}
