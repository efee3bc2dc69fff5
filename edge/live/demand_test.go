package live

import (
	"fmt"
	"testing"
	"time"
)

// TestLiveDemandWindow: a rendition is watched while a client asked for one of the objects its
// listing named within its window, and not after; a request for anything else, or a prefetch
// (which never calls note), watches nothing.
func TestLiveDemandWindow(t *testing.T) {
	var d liveDemand
	t0 := time.Unix(1000, 0)
	at := func(t time.Time) func() time.Time { return func() time.Time { return t } }
	l := listing{id: "http://e/v.mpd#0", media: []string{"k1", "k2", "init"}, part: "p1", newest: "u2"}
	if s := d.listed(l, 6*time.Second, t0); !s.first || s.media || s.part {
		t.Errorf("first listing: %+v", s)
	}
	d.note("unrelated", at(t0))
	if s := d.listed(l, 6*time.Second, t0.Add(time.Second)); s.first || s.media || s.newest != "u2" {
		t.Errorf("nothing asked for: %+v", s)
	}
	d.note("k2", at(t0.Add(2*time.Second)))
	if s := d.listed(l, 6*time.Second, t0.Add(7*time.Second)); !s.media || s.part {
		t.Errorf("k2 asked for 5 s ago: %+v", s)
	}
	d.note("p1", at(t0.Add(7*time.Second)))
	if s := d.listed(l, 6*time.Second, t0.Add(9*time.Second)); s.media || !s.part {
		t.Errorf("k2 asked for 7 s ago, p1 2 s ago: %+v", s)
	}
	// Neither listed nor asked for during its window: forgotten, its keys too.
	d.expire(t0.Add(16 * time.Second))
	if len(d.renditions) != 0 || len(d.byKey) != 0 || d.indexed.Load() != 0 {
		t.Errorf("after expiry: %d renditions, %d keys", len(d.renditions), len(d.byKey))
	}
}

// TestLiveDemandBounded: however many renditions are listed, at most maxRenditions are kept,
// each with its keys only; the least recently active go first, and a key two renditions
// share (an HLS playlist and an MPD naming the same segment) counts for both.
func TestLiveDemandBounded(t *testing.T) {
	var d liveDemand
	t0 := time.Unix(1000, 0)
	for i := range maxRenditions + 100 {
		d.listed(listing{id: fmt.Sprint("r", i), media: []string{fmt.Sprint("k", i), fmt.Sprint("k", i+1)}}, time.Hour, t0.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(d.renditions); n > maxRenditions {
		t.Errorf("%d renditions kept, want ≤ %d", n, maxRenditions)
	}
	if _, ok := d.renditions["r0"]; ok {
		t.Error("the least recently active rendition was kept")
	}
	if n := len(d.byKey); n > maxRenditions+1 {
		t.Errorf("%d keys indexed for %d renditions", n, len(d.renditions))
	}
	last := maxRenditions + 99
	d.note(fmt.Sprint("k", last), func() time.Time { return t0.Add(time.Minute) })
	for _, id := range []string{fmt.Sprint("r", last), fmt.Sprint("r", last-1)} {
		if s := d.listed(listing{id: id}, time.Hour, t0.Add(2*time.Minute)); !s.media {
			t.Errorf("%s: a request for a key it shares not counted", id)
		}
	}
	// A listing replaces the keys of the previous one.
	if n := len(d.renditions[fmt.Sprint("r", last)].keys); n != 0 {
		t.Errorf("%d keys left from the previous listing", n)
	}
}
