package edge

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// brokenMember serves body under etag, and — while broken is set — cuts a whole response off
// after half of it by closing the connection, as a member killed mid-body does. It answers
// Range requests (206, Content-Range) and If-Match (412 when it doesn't match), like
// http.ServeContent.
type brokenMember struct {
	body          []byte
	etag          string
	broken        atomic.Bool
	full, ranges  atomic.Int64
	lastRange     atomic.Value
	lastIfMatch   atomic.Value
	authorization atomic.Value
}

func (m *brokenMember) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("ETag", m.etag)
	w.Header().Set("Cache-Control", "max-age=60")
	if rg := r.Header.Get("Range"); rg != "" {
		m.ranges.Add(1)
		m.lastRange.Store(rg)
		m.lastIfMatch.Store(r.Header.Get("If-Match"))
	} else {
		m.full.Add(1)
	}
	if m.broken.Load() && r.Header.Get("Range") == "" {
		w.Header().Set("Content-Length", strconv.Itoa(len(m.body)))
		w.WriteHeader(http.StatusOK)
		w.Write(m.body[:len(m.body)/2])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(m.body))
}

// TestPoolResumeBody: a member that dies in the middle of a body leaves no client with a
// truncated object when another member serves the same representation (same strong ETag): the
// edge asks it for the rest (Range from where the body broke off, If-Match the ETag) and the
// client gets every byte, once. A member with another ETag, or a weak one, is never joined
// to it: the client's response then fails as it would have.
func TestPoolResumeBody(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	for _, tc := range []struct {
		name         string
		etagA, etagB string
		resumed      bool
	}{
		{"same strong ETag", `"v1"`, `"v1"`, true},
		{"another representation", `"v1"`, `"v2"`, false},
		{"weak ETag", `W/"v1"`, `W/"v1"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &brokenMember{body: body, etag: tc.etagA}
			b := &brokenMember{body: body, etag: tc.etagB}
			a.broken.Store(true)
			oa, ob := newOrigin(t, a.ServeHTTP), newOrigin(t, b.ServeHTTP)
			_, srv := newEdge(t, oa.URL, func(c *Config) {
				// Weight: every first attempt goes to the broken member.
				c.Origins = []Origin{{Host: "*", URLs: []PoolMember{{URL: oa.URL, Weight: 1000000}, {URL: ob.URL, Weight: 1}}}}
			})
			resp, err := http.Get(srv.URL + "/seg.m4s")
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tc.resumed {
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("got %d of %d bytes (%v), want them all", len(got), len(body), err)
				}
				if rg, im := b.lastRange.Load(), b.lastIfMatch.Load(); rg != fmt.Sprintf("bytes=%d-", len(body)/2) || im != tc.etagB {
					t.Errorf("the rest asked as Range %v If-Match %v", rg, im)
				}
				// Stored whole: the next request is a hit, asking no member.
				before := a.full.Load() + b.full.Load() + b.ranges.Load()
				if r := get(t, srv.URL+"/seg.m4s"); r.body != string(body) || !strings.Contains(r.cacheStatus(), "hit") {
					t.Errorf("second request: %d bytes, %q", len(r.body), r.cacheStatus())
				}
				if after := a.full.Load() + b.full.Load() + b.ranges.Load(); after != before {
					t.Errorf("members asked %d more times for a stored object", after-before)
				}
				return
			}
			if err == nil && bytes.Equal(got, body) {
				t.Fatal("a whole body although no member could give its rest")
			}
			if len(got) > len(body)/2 {
				t.Errorf("%d bytes reached the client: more than the broken member sent", len(got))
			}
			if tc.etagA == tc.etagB && b.ranges.Load() != 0 {
				t.Errorf("a weak ETag's body was resumed (%d range requests)", b.ranges.Load())
			}
		})
	}
}
