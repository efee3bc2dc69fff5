package edge

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// The series an operator alerts on (samples/ops/alerts.yml): client responses by host, status
// class and cache status; origin responses by status class and origin failures by kind; the
// tiers' capacities beside their use.
//
// The host label is bounded: only the hosts the configuration names (origins' hosts, rules'
// hosts) get a series of their own, any other Host header counts as "other" — a client can't
// create series by sending Host headers.

// hostOther is the host label of requests for hosts the configuration doesn't name.
const hostOther = "other"

// statusClasses are the values of the class label, by status/100 (0 and 6+: "other").
var statusClasses = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func statusClass(status int) string { return statusClasses[classIndex(status)] }

// classIndex is status's index in statusClasses.
func classIndex(status int) int {
	if status == 0 {
		status = http.StatusOK // a handler that wrote nothing answered 200
	}
	if c := status / 100; c >= 1 && c <= 5 {
		return c
	}
	return 0
}

// Kinds of origin failure (reel_edge_origin_errors_total{kind}).
const (
	originErrConnect  = "connect"  // no connection: refused, unreachable, DNS
	originErrTimeout  = "timeout"  // no answer in time (connect, first byte)
	originErrReset    = "reset"    // the connection broke before a response head
	originErrTLS      = "tls"      // certificate not verified, handshake refused
	originErrCanceled = "canceled" // the client (or the edge) gave up first: not the origin's fault
	originErrOther    = "other"
)

var originErrKinds = []string{originErrConnect, originErrTimeout, originErrReset, originErrTLS, originErrCanceled, originErrOther}

// originErrorKind classifies an error of an origin request.
func originErrorKind(err error) string {
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case tlsFailure(err) != "":
		return originErrTLS
	case errors.Is(err, context.Canceled):
		return originErrCanceled
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return originErrTimeout
	case errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || (errors.As(err, &op) && op.Op == "dial"):
		return originErrConnect
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "server closed"):
		return originErrReset
	}
	return originErrOther
}

// opsMetrics are the alerting series, registered by newOpsMetrics on m's registry.
type opsMetrics struct {
	responses       *prometheus.CounterVec // client responses by host, class, cache
	originResponses *prometheus.CounterVec // by class
	originErrors    *prometheus.CounterVec // by kind
	capacity        *prometheus.GaugeVec   // by tier
	// hosts are the host label's values other than hostOther, each with its series; swapped
	// whole by setHosts.
	hosts atomic.Pointer[map[string]*hostSeries]
	other hostSeries
}

// hostSeries are one host's reel_edge_responses_total children, resolved on first use: a
// label lookup per request costs more than the increment.
type hostSeries struct {
	label string
	c     [len(statusClasses)][len(requestLabels)]atomic.Pointer[prometheus.Counter]
}

func (h *hostSeries) counter(vec *prometheus.CounterVec, class int, oc outcome) prometheus.Counter {
	p := &h.c[class][oc]
	if c := p.Load(); c != nil {
		return *c
	}
	c := vec.WithLabelValues(h.label, statusClasses[class], requestLabels[oc])
	p.Store(&c)
	return c
}

func (m *metrics) registerOps() {
	o := &m.ops
	o.responses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_edge_responses_total",
		Help: "Client responses by host (the configured hosts; any other Host header is \"other\"), status class (1xx…5xx) and how the cache answered (hit, stale, revalidated, miss, bypass, pass, error).",
	}, []string{"host", "class", "cache"})
	o.originResponses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_edge_origin_responses_total",
		Help: "Responses received from origins and parents, by status class (1xx…5xx).",
	}, []string{"class"})
	o.originErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_edge_origin_errors_total",
		Help: "Origin and parent requests that got no response, by kind: connect, timeout, reset, tls, canceled (the client gave up first), other.",
	}, []string{"kind"})
	for _, c := range statusClasses[1:] {
		o.originResponses.WithLabelValues(c) // present at 0, so that rate() has a start
	}
	for _, k := range originErrKinds {
		o.originErrors.WithLabelValues(k)
	}
	o.capacity = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "reel_edge_store_capacity_bytes",
		Help: "What a storage tier may hold (--memory, --disk); compare with reel_edge_store_bytes.",
	}, []string{"tier"})
	o.capacity.WithLabelValues("memory")
	o.capacity.WithLabelValues("disk")
	m.reg.MustRegister(o.responses, o.originResponses, o.originErrors, o.capacity)
	o.other.label = hostOther
	o.setHosts(nil)
}

// setCapacity sets what the tiers may hold (disk: 0 without a disk tier).
func (o *opsMetrics) setCapacity(memory, disk int64) {
	o.capacity.WithLabelValues("memory").Set(float64(memory))
	o.capacity.WithLabelValues("disk").Set(float64(disk))
}

// setHosts makes hosts (lower case, no port) the host label's values besides "other".
func (o *opsMetrics) setHosts(hosts []string) {
	set := map[string]*hostSeries{}
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		if h != "" && h != "*" && !strings.ContainsAny(h, "*?[") {
			set[h] = &hostSeries{label: h}
		}
	}
	o.hosts.Store(&set)
}

// seriesFor are the series of a request's Host.
func (o *opsMetrics) seriesFor(host string) *hostSeries {
	set := *o.hosts.Load()
	if len(set) == 0 {
		return &o.other
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if s := set[host]; s != nil {
		return s
	}
	return &o.other
}

// countResponse counts a client response.
func (o *opsMetrics) countResponse(host string, status int, oc outcome) {
	o.seriesFor(host).counter(o.responses, classIndex(status), oc).Inc()
}

// countOrigin counts an origin request's result.
func (o *opsMetrics) countOrigin(resp *http.Response, err error) {
	if err != nil {
		o.originErrors.WithLabelValues(originErrorKind(err)).Inc()
		return
	}
	o.originResponses.WithLabelValues(statusClass(resp.StatusCode)).Inc()
}

// configuredHosts are the hosts cfg names: its origins' and its rules'.
func configuredHosts(cfg Config) []string {
	var hosts []string
	for _, o := range cfg.Origins {
		hosts = append(hosts, o.Host)
	}
	for _, r := range cfg.Rules {
		hosts = append(hosts, r.Match.Host)
		hosts = append(hosts, r.Match.Hosts...)
	}
	return hosts
}

// diskCapacity is what the disk tier may hold: 0 without one.
func diskCapacity(cfg Config) int64 {
	if cfg.CacheDir == "" {
		return 0
	}
	return int64(cfg.Disk)
}
