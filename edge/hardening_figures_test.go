package edge

import (
	"fmt"
	"net/http"
	"os"
	"testing"
)

// TestHardeningFigures measures, for make bench (REEL_HARDENING=1), what a failing origin and
// scattered ranges cost the origin with the default limits: origin requests for 300
// concurrent requests on a failing key, and origin bytes per client byte for range headers on
// cold objects.
func TestHardeningFigures(t *testing.T) {
	if os.Getenv("REEL_HARDENING") == "" {
		t.Skip("set REEL_HARDENING=1 (make bench)")
	}
	t.Run("error storm", func(t *testing.T) {
		o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Retry-After", "5")
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		})
		_, srv := newEdge(t, o.URL, nil)
		for wave := 1; wave <= 3; wave++ {
			before := o.hits.Load()
			answers := storm(t, fmt.Sprintf("%s/failing", srv.URL), stormClients)
			errors := 0
			for _, a := range answers {
				if a.status == http.StatusServiceUnavailable && a.header.Get("Retry-After") == "5" {
					errors++
				}
			}
			t.Logf("error storm wave %d: %d concurrent requests on a failing key (503, no-store) → %d origin requests; %d clients got the 503 with Retry-After",
				wave, stormClients, o.hits.Load()-before, errors)
		}
	})
	t.Run("range amplification", func(t *testing.T) {
		const slice, slices = 1 << 20, 16
		ro := newRangedOrigin(t, slices*slice)
		e, srv := newEdge(t, ro.URL, nil)
		scattered := "bytes="
		for i := range slices {
			at := i*slice + slice/2
			scattered += fmt.Sprintf("%d-%d,", at, at)
		}
		for i, rng := range []string{scattered[:len(scattered)-1], "bytes=-1", fmt.Sprintf("bytes=0-0,%d-%d", 8*slice, 8*slice), "bytes=100-199"} {
			settle(e)
			sent, hits := ro.sent.Load(), ro.hits.Load()
			r := get(t, fmt.Sprintf("%s/cold%d", srv.URL, i), "Range", rng)
			settle(e)
			origin := ro.sent.Load() - sent
			t.Logf("range amplification %.40q: %d client bytes, origin %d bytes in %d requests (%.0f×): %.2f slices over the client's bytes (bound 2)",
				rng, len(r.body), origin, ro.hits.Load()-hits, float64(origin)/float64(len(r.body)), float64(origin-int64(len(r.body)))/slice)
		}
	})
}
