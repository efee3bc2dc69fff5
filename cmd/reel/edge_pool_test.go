package main

import (
	"testing"

	"github.com/reelvideo/reel/edge"
)

// TestOriginsSummaryPool: the start-up line names a pool's members, not an empty URL.
func TestOriginsSummaryPool(t *testing.T) {
	cfg := edge.Config{Origins: []edge.Origin{
		{Host: "*", URLs: []edge.PoolMember{{URL: "http://a:8080"}, {URL: "http://b:8080", Weight: 2}}},
		{Name: "live", URL: "http://l:8090"},
	}}
	if got, want := originsSummary(cfg), "http://a:8080|http://b:8080, live=http://l:8090"; got != want {
		t.Fatalf("summary %q, want %q", got, want)
	}
}
