package edge

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// scatteredRanges is a Range header of n one-byte ranges, one in each of n slices.
func scatteredRanges(n int) string {
	specs := make([]string, n)
	for i := range specs {
		at := int64(i)*testSlice + testSlice/2
		specs[i] = fmt.Sprintf("%d-%d", at, at)
	}
	return "bytes=" + strings.Join(specs, ",")
}

// TestRangeAmplification: whatever the Range header, a request on a cold object costs the
// origin at most the client's bytes plus two slices (DESIGN: range slicing) — scattered
// small ranges are passed through rather than filled slice by slice, a suffix range of an
// object of unknown length is one origin request — and ranges of slices already stored are
// answered from them.
func TestRangeAmplification(t *testing.T) {
	const slices = 16
	ro := newRangedOrigin(t, slices*testSlice)
	e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
	for _, tc := range []struct{ name, path, rng string }{
		{"16 one-byte ranges in 16 slices", "/scattered", scatteredRanges(slices)},
		{"3 one-byte ranges in 3 slices", "/three", scatteredRanges(3)},
		{"suffix", "/suffix", "bytes=-1"},
		{"suffix and a range", "/mixed", fmt.Sprintf("bytes=-1,%d-%d", 5*testSlice, 5*testSlice)},
	} {
		settle(e)
		sent, hits := ro.sent.Load(), ro.hits.Load()
		r := get(t, srv.URL+tc.path, "Range", tc.rng)
		settle(e)
		if r.status != http.StatusPartialContent {
			t.Fatalf("%s: status %d", tc.name, r.status)
		}
		origin := ro.sent.Load() - sent
		if limit := int64(len(r.body)) + 2*testSlice; origin > limit {
			t.Errorf("%s: origin sent %d bytes for %d client bytes (%.0f×), at most %d", tc.name, origin, len(r.body),
				float64(origin)/float64(len(r.body)), limit)
		}
		if tc.name == "suffix" && ro.hits.Load()-hits != 1 {
			t.Errorf("suffix: %d origin requests, want 1", ro.hits.Load()-hits)
		}
	}
	// Stored whole, the same scattered ranges cost the origin nothing.
	get(t, srv.URL+"/scattered")
	settle(e)
	sent := ro.sent.Load()
	if r := get(t, srv.URL+"/scattered", "Range", scatteredRanges(slices)); r.status != http.StatusPartialContent || ro.sent.Load() != sent {
		t.Errorf("warm scattered ranges: %d, origin sent %d bytes", r.status, ro.sent.Load()-sent)
	}
}
