package edge

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/reelvideo/reel/edge/live"
)

// TestDetachedFillSteps: a fill nobody waits for tells its hooks admitted → started → ended,
// in that order, even when it ends at once (an origin answering 404 for a segment that
// doesn't exist yet), so that a prefetch counted as failed was counted as started first; a
// fill of a stored object is not even admitted.
func TestDetachedFillSteps(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/missing") {
			w.Header().Set("Cache-Control", "no-store")
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write([]byte("segment"))
	}))
	defer origin.Close()
	e, srv := newEdge(t, origin.URL, nil)
	var mu sync.Mutex
	var steps []string
	step := func(s string) {
		mu.Lock()
		steps = append(steps, s)
		mu.Unlock()
	}
	hooks := live.FillHooks{
		Admit:     func(string) bool { step("admit"); return true },
		Abandoned: func() { step("abandoned") },
		Started:   func() { step("started") },
		Ended: func(end live.FillResult) {
			if end.Stored {
				step("stored")
			} else {
				step("failed")
			}
		},
	}
	fill := func(path string) []string {
		mu.Lock()
		steps = nil
		mu.Unlock()
		r := httptest.NewRequest(http.MethodGet, srv.URL+path, nil)
		if done := e.fillDetached(r, hooks); done != nil {
			<-done
		}
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(steps)
	}
	for i := range 50 { // the race it guards against is a goroutine's: give it chances
		if got := fill(fmt.Sprintf("/missing-%d", i)); !slices.Equal(got, []string{"admit", "started", "failed"}) {
			t.Fatalf("a fill that failed at once: steps %v", got)
		}
	}
	if got := fill("/seg"); !slices.Equal(got, []string{"admit", "started", "stored"}) {
		t.Fatalf("a stored fill: steps %v", got)
	}
	if got := fill("/seg"); len(got) != 0 {
		t.Fatalf("a fill of a stored object: steps %v, want none", got)
	}
}
