package live

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// TestMPDLatencyFollowsDurations: the channel's dynamic MPD advises the latency the durations
// give (manifest.latencyTargets), not a larger delay of its own. With 2 s segments and 0.5 s
// parts the low-latency target is 3.5 s (segment + 3 parts); without parts the delay is three
// segments.
func TestMPDLatencyFollowsDurations(t *testing.T) {
	for _, tc := range []struct {
		name          string
		part          time.Duration
		spd, llTarget time.Duration
	}{
		{"low latency", 500 * time.Millisecond, 3500 * time.Millisecond, 3500 * time.Millisecond},
		{"no parts", 0, 6 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testChannel(t, Config{SegmentDuration: 2 * time.Second, PartDuration: tc.part}, "video")
			for at := uint64(0); at < 8000; at += 500 {
				if err := c.Append("video", frag(at, 500, at%2000 == 0)); err != nil {
					t.Fatal(err)
				}
			}
			srv := NewServer(nil)
			srv.Add(c)
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/live/ch/manifest.mpd", nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("MPD: %d %s", rec.Code, rec.Body)
			}
			m, err := mpd.ReadFromString(rec.Body.String())
			if err != nil {
				t.Fatal(err)
			}
			if m.SuggestedPresentationDelay == nil || time.Duration(*m.SuggestedPresentationDelay) != tc.spd {
				t.Errorf("suggestedPresentationDelay %v, want %v", m.SuggestedPresentationDelay, tc.spd)
			}
			var target time.Duration
			if len(m.ServiceDescription) > 0 && len(m.ServiceDescription[0].Latencies) > 0 && m.ServiceDescription[0].Latencies[0].Target != nil {
				target = time.Duration(*m.ServiceDescription[0].Latencies[0].Target) * time.Millisecond
			}
			if target != tc.llTarget {
				t.Errorf("ServiceDescription latency target %v, want %v", target, tc.llTarget)
			}
		})
	}
}
