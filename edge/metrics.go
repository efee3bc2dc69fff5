package edge

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reelvideo/reel/edge/h1"
)

// metrics are the edge's Prometheus series, on a registry of its own (served by the admin
// listener) so that several edges in one process — tests — don't collide.
type metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec // by cache status: hit, miss, stale, revalidated, bypass, pass, error
	bytes          *prometheus.CounterVec // body bytes sent to clients, by source: cache, origin
	originRequests prometheus.Counter     // requests sent to origins
	originSeconds  prometheus.Histogram   // time to the origin's response head
	collapsed      prometheus.Counter     // requests that joined another request's fill
	evictions      *prometheus.CounterVec // by tier and cause
	ttfb           prometheus.Histogram   // time from request to first body byte written
	purges         *prometheus.CounterVec // by kind (url, prefix, tag) and mode (hard, soft)
	originBytes    prometheus.Counter     // body bytes received from origins
	// Slices fetched beyond a request's range (read ahead for the next request), and those
	// a later request then read: used / started is the read-ahead's hit ratio.
	prefetch                      *prometheus.CounterVec
	prefetchStarted, prefetchUsed prometheus.Counter
	// Live manifests (edge/live): manifests stored, by kind; live segment prefetches by result.
	manifests    *prometheus.CounterVec
	livePrefetch map[string]prometheus.Counter

	// Resolved once: a label lookup per request costs more than the increment.
	requestsBy [len(requestLabels)]prometheus.Counter // by outcome
	// byProto counts requests by protocol, indexed by the request's ProtoMajor (0 and 1:
	// HTTP/1.x, 2: HTTP/2, 3: HTTP/3) — see countProtocol.
	byProto                         [4]prometheus.Counter
	bytesFromCache, bytesFromOrigin prometheus.Counter

	// Upstream connections (upstream.go): opened, by protocol; requests failed in TLS.
	originConns       *prometheus.CounterVec
	originTLSFailures prometheus.Counter

	// limits counts the requests and connections cut by a protective limit, by limit name
	// (limitNames).
	limits *prometheus.CounterVec

	// tokenRejected counts the requests refused for their signed-URL token, by reason
	// (tokencheck.go: tokenRefusals).
	tokenRejected *prometheus.CounterVec

	// ops are the alerting series (metrics_ops.go).
	ops opsMetrics

	// accessRefused counts the requests the access rules refused, by reason (access.go:
	// accessRefusals).
	accessRefused [len(accessRefusals)]prometheus.Counter
}

// Values of the limit label of reel_edge_limit_hits_total; the h1 names come from the server.
const (
	limitRequestBodyTimeout = "request_body_timeout"
	limitUploadQueue        = "upload_queue"
	limitOriginQueue        = "origin_connection_queue"
)

var limitNames = []string{h1.LimitConns, h1.LimitFirstRequest, h1.LimitWrite, limitRequestBodyTimeout, limitUploadQueue, limitOriginQueue}

func (m *metrics) limitHit(limit string) { m.limits.WithLabelValues(limit).Inc() }

// outcome is how the cache answered a request (see setLabel): an index into requestLabels.
type outcome uint8

const (
	outcomeHit outcome = iota
	outcomeStale
	outcomeRevalidated
	outcomeMiss
	outcomeBypass
	outcomePass
	outcomeError
)

// requestLabels are the values of the "cache" label, by outcome.
var requestLabels = [...]string{
	outcomeHit: "hit", outcomeStale: "stale", outcomeRevalidated: "revalidated", outcomeMiss: "miss",
	outcomeBypass: "bypass", outcomePass: "pass", outcomeError: "error",
}

// monoNow reads the monotonic clock only, which is all a duration needs and costs about half
// of time.Now (time.Since of a fixed instant).
func monoNow() time.Duration { return time.Since(monoBase) }

var monoBase = time.Now()

func newMetrics(memBytes, diskBytes func() float64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reel_edge_requests_total", Help: "Client requests by how the cache answered them.",
		}, []string{"cache"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reel_edge_response_bytes_total", Help: "Body bytes sent to clients, by where they came from (byte-hit ratio = cache / total).",
		}, []string{"source"}),
		originRequests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reel_edge_origin_requests_total", Help: "Requests sent to origins.",
		}),
		originSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "reel_edge_origin_response_seconds", Help: "Time from sending a request to an origin to receiving its response head.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		collapsed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reel_edge_collapsed_requests_total", Help: "Requests served by joining another request's origin fetch.",
		}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reel_edge_evictions_total", Help: "Objects removed from a tier, by cause.",
		}, []string{"tier", "cause"}),
		ttfb: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "reel_edge_time_to_first_byte_seconds", Help: "Time from a request's arrival to its response head being written.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}),
		purges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reel_edge_purges_total", Help: "Purge requests by kind.",
		}, []string{"kind", "mode"}),
		originBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reel_edge_origin_bytes_total", Help: "Body bytes received from origins.",
		}),
		prefetch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reel_edge_slice_prefetch_total",
			Help: "Slices read ahead past a range request's end (started) and those a later request read (used).",
		}, []string{"result"}),
	}
	m.prefetchStarted, m.prefetchUsed = m.prefetch.WithLabelValues("started"), m.prefetch.WithLabelValues("used")
	m.manifests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_edge_manifests_total",
		Help: "Manifests fetched from origins and classified: hls-media, hls-media-live, hls-master, dash, dash-live, unparsed.",
	}, []string{"kind"})
	livePrefetch := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_edge_live_prefetch_total",
		Help: "Segments prefetched from live manifests: started, used (a client request was served from it), wasted (evicted, purged, stale or a minute old unused), failed (not stored), dropped (no free slot).",
	}, []string{"result"})
	m.livePrefetch = map[string]prometheus.Counter{}
	for _, l := range []string{"started", "used", "wasted", "failed", "dropped"} {
		m.livePrefetch[l] = livePrefetch.WithLabelValues(l)
	}
	for o, l := range requestLabels {
		m.requestsBy[o] = m.requests.WithLabelValues(l)
	}
	m.bytesFromCache, m.bytesFromOrigin = m.bytes.WithLabelValues("cache"), m.bytes.WithLabelValues("origin")
	m.originConns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_edge_origin_connections_total",
		Help: "Connections opened to origins, by protocol: h2 or http/1.1 as chosen by ALPN over TLS, h2c or http/1.1 in the clear.",
	}, []string{"protocol"})
	m.originTLSFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reel_edge_origin_tls_failures_total",
		Help: "Origin requests that failed in TLS (certificate not verified, handshake refused, no h2 where required): answered 502.",
	})
	for _, p := range []string{connHTTP1, connH2, connH2C} {
		m.originConns.WithLabelValues(p) // present at 0, so that a dashboard's rate() has a start
	}
	m.reg.MustRegister(m.originConns, m.originTLSFailures)
	m.limits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_edge_limit_hits_total",
		Help: "Connections and requests cut by a protective limit: client_connections (closed at accept), first_request_timeout, request_body_timeout (408), upload_queue and origin_connection_queue (503).",
	}, []string{"limit"})
	for _, l := range limitNames {
		m.limits.WithLabelValues(l)
	}
	m.reg.MustRegister(m.limits)
	m.tokenRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_edge_token_rejected_total",
		Help: "Requests refused with 403 for their signed-URL token: missing, malformed, unknown_key, signature, expired, not_yet_valid, path, address.",
	}, []string{"reason"})
	for _, t := range tokenRefusals {
		m.tokenRejected.WithLabelValues(t.label)
	}
	m.reg.MustRegister(m.tokenRejected)
	accessRefused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_edge_access_refused_total",
		Help: "Requests the access rules refused: referer, ip, country (403), rate (429).",
	}, []string{"reason"})
	for i, a := range accessRefusals {
		m.accessRefused[i] = accessRefused.WithLabelValues(a.label)
	}
	m.reg.MustRegister(accessRefused)
	byProto := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reel_edge_requests_by_protocol_total",
		Help: "Client requests by the protocol they came over: http/1.1 (HTTP/1.0 included), h2, h3.",
	}, []string{"protocol"})
	m.byProto[0] = byProto.WithLabelValues("http/1.1")
	m.byProto[1] = m.byProto[0]
	m.byProto[2] = byProto.WithLabelValues("h2")
	m.byProto[3] = byProto.WithLabelValues("h3")
	m.reg.MustRegister(byProto)
	m.registerOps()
	// Present at 0 from the start, so that a dashboard's or an alert's rate() has a start and
	// samples/ops can be checked against a fresh edge's /metrics (cmd/reel TestOpsAlerts).
	for _, c := range []string{"size", "expired", "replaced", "invalidated"} {
		m.evictions.WithLabelValues("memory", c)
	}
	for _, c := range []string{"size", "invalidated"} {
		m.evictions.WithLabelValues("disk", c)
	}
	for _, k := range []string{"url", "prefix", "tag"} {
		m.purges.WithLabelValues(k, "hard")
		m.purges.WithLabelValues(k, "soft")
	}
	for _, k := range []string{"hls-media", "hls-media-live", "hls-master", "dash", "dash-live", "unparsed"} {
		m.manifests.WithLabelValues(k)
	}
	m.reg.MustRegister(m.requests, m.bytes, m.originRequests, m.originSeconds, m.collapsed,
		m.evictions, m.ttfb, m.purges, m.originBytes, m.prefetch, m.manifests, livePrefetch,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "reel_edge_store_bytes", Help: "Bytes held by a storage tier.", ConstLabels: prometheus.Labels{"tier": "memory"},
		}, memBytes),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "reel_edge_store_bytes", Help: "Bytes held by a storage tier.", ConstLabels: prometheus.Labels{"tier": "disk"},
		}, diskBytes),
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// countProtocol counts a request by its protocol version: a separate series rather than a
// label on reel_edge_requests_total, whose series and queries stay as they were.
func (m *metrics) countProtocol(major int) {
	m.byProto[min(max(major, 0), 3)].Inc()
}

func (m *metrics) observeOrigin(start time.Time, resp *http.Response, err error) {
	m.originRequests.Inc()
	m.ops.countOrigin(resp, err)
	m.originSeconds.Observe(time.Since(start).Seconds())
}
