package live

import (
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are `reel live`'s Prometheus series, on a registry of their own (several servers in
// one process — tests — don't collide). One Metrics serves every channel of a process.
type Metrics struct {
	reg       *prometheus.Registry
	fragments *prometheus.CounterVec // by channel, track and result (appended, refused)
	segments  *prometheus.CounterVec // completed segments, by channel and track
	edge      *prometheus.GaugeVec   // the live edge's segment number, by channel and track
	blocking  *prometheus.CounterVec // blocking playlist reloads, by channel and result
	ingest    *prometheus.CounterVec // ingest requests, by channel and HTTP status
	unaligned *prometheus.CounterVec // segments extended past their grid line, by channel and track
	noKey     *prometheus.GaugeVec   // 1 while a track's publishing stalls for want of a key
}

// NewMetrics makes the live packager's metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		fragments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reel_live_fragments_total", Help: "Fragments from sources, by result: appended, refused (time going back, unknown track, after the end…), or withheld (the key of their key period is not known: not published).",
		}, []string{"channel", "track", "result"}),
		segments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reel_live_segments_total", Help: "Segments completed and published.",
		}, []string{"channel", "track"}),
		edge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reel_live_last_segment", Help: "Media sequence number of the last complete segment (a track that stalls stops moving).",
		}, []string{"channel", "track"}),
		blocking: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reel_live_blocking_reloads_total", Help: "LL-HLS blocking playlist reloads, by result: served, timeout (503), bad (400).",
		}, []string{"channel", "result"}),
		ingest: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reel_live_ingest_requests_total", Help: "Requests from encoders pushing CMAF, by HTTP status of the answer.",
		}, []string{"channel", "status"}),
		unaligned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reel_live_unaligned_segments_total", Help: "Video segments extended past their grid line because the rendition had no keyframe there (its keyframes are not aligned with the segment grid).",
		}, []string{"channel", "track"}),
	}
	m.noKey = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "reel_live_key_missing", Help: "1 while a track publishes nothing because the key of its key period is not known (a CPIX document that does not reach that period yet); 0 otherwise.",
	}, []string{"channel", "track"})
	m.reg.MustRegister(m.fragments, m.segments, m.edge, m.blocking, m.ingest, m.unaligned, m.noKey)
	return m
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// IngestRequest counts an encoder's request to channel answered with status.
func (m *Metrics) IngestRequest(channel string, status int) {
	if m != nil {
		m.ingest.WithLabelValues(channel, http.StatusText(status)).Inc()
	}
}

func (m *Metrics) fragment(channel, track string, err error) {
	if m == nil {
		return
	}
	result := "appended"
	switch {
	case errors.Is(err, errWithheld):
		result = "withheld"
	case err != nil:
		result = "refused"
	}
	m.fragments.WithLabelValues(channel, track, result).Inc()
}

func (m *Metrics) segment(channel, track string, number uint64) {
	if m != nil {
		m.segments.WithLabelValues(channel, track).Inc()
		m.edge.WithLabelValues(channel, track).Set(float64(number))
	}
}

func (m *Metrics) keyMissing(channel, track string, missing bool) {
	if m != nil {
		v := 0.0
		if missing {
			v = 1
		}
		m.noKey.WithLabelValues(channel, track).Set(v)
	}
}

func (m *Metrics) unalignedSegment(channel, track string) {
	if m != nil {
		m.unaligned.WithLabelValues(channel, track).Inc()
	}
}

func (m *Metrics) blocked(channel, result string) {
	if m != nil {
		m.blocking.WithLabelValues(channel, result).Inc()
	}
}
