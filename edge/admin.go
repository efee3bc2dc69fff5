package edge

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reelvideo/reel/edge/cachekey"
)

// The admin API lives on its own listener and needs a bearer token for everything but
// /healthz: purging is a denial-of-service lever, and metrics reveal traffic.
//
//	POST /purge?url=U[&mode=soft]      one URL (every variant)
//	POST /purge?prefix=U[&mode=soft]   every URL starting with U
//	POST /purge?tag=T[&mode=soft]      every object tagged T by Surrogate-Key or Cache-Tag
//	     …&id=ID                       applied once per id (a repeat answers "already":true)
//	     …&cluster=1[&id=ID]           here and at every cluster member, with a report (purgefan.go)
//	GET  /purge/ID                     the current report of a cluster purge started here
//	POST /warm                         warm the cache: {"urls": [...]} or {"manifest": U} (warm.go)
//	GET  /warm[/ID]                    warm-up jobs' progress; DELETE /warm/ID cancels one
//	GET  /stats                        counters as JSON (and the warm-up jobs)
//	GET  /metrics                      Prometheus
//	GET  /healthz                      liveness, no token
//
// A hard purge forgets the objects. A soft purge marks them stale, so they are revalidated
// before reuse but still protect clients through stale-if-error while the origin is down.

// surrogateHeaders carry the tags an origin gives a response for group purges. They are for
// the cache only: stripped before clients see them.
var surrogateHeaders = []string{"Surrogate-Key", "Cache-Tag"}

// tagIndex maps surrogate keys to the primary keys of objects that carried them. Entries of
// evicted objects linger harmlessly: purging a missing key is a no-op.
type tagIndex struct {
	mu    sync.Mutex
	keys  map[string]map[string]struct{}
	pairs int // (tag, key) pairs held, bounded by maxTagPairs
}

// maxTagPairs bounds the index's memory (~100 MB at most): past it, new tags are not indexed
// (a tag purge then misses them; a prefix or URL purge still works).
const maxTagPairs = 1 << 20

func newTagIndex() *tagIndex { return &tagIndex{keys: map[string]map[string]struct{}{}} }

// maxTagsPerObject bounds what one response can add to the index.
const maxTagsPerObject = 64

func (t *tagIndex) add(primary string, h http.Header) {
	tags := responseTags(h)
	if len(tags) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tag := range tags {
		set := t.keys[tag]
		if set == nil {
			set = map[string]struct{}{}
			t.keys[tag] = set
		}
		if _, ok := set[primary]; !ok && t.pairs < maxTagPairs {
			set[primary] = struct{}{}
			t.pairs++
		}
	}
}

func (t *tagIndex) take(tag string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for k := range t.keys[tag] {
		out = append(out, k)
	}
	t.pairs -= len(t.keys[tag])
	delete(t.keys, tag)
	return out
}

// responseTags reads Surrogate-Key (space-separated, Fastly) and Cache-Tag (comma-separated,
// Cloudflare/Akamai).
func responseTags(h http.Header) []string {
	var tags []string
	for _, v := range h.Values("Surrogate-Key") {
		tags = append(tags, strings.Fields(v)...)
	}
	for _, v := range h.Values("Cache-Tag") {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	if len(tags) > maxTagsPerObject {
		tags = tags[:maxTagsPerObject]
	}
	return tags
}

// AdminHandler serves the admin API, requiring token as a bearer token.
func (e *Edge) AdminHandler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	authed := func(h http.Handler) http.Handler { return RequireBearer("reel-admin", token, h) }
	mux.Handle("GET /metrics", authed(promhttp.HandlerFor(e.m.reg, promhttp.HandlerOpts{})))
	mux.Handle("GET /stats", authed(http.HandlerFunc(e.serveStats)))
	c := e.clusterPurger(token)
	mux.Handle("POST /purge", authed(e.servePurge(c)))
	mux.Handle("GET /purge/{id}", authed(e.servePurgeReport(c)))
	mux.Handle("POST /warm", authed(http.HandlerFunc(e.serveWarmStart))) // warm.go
	mux.Handle("GET /warm", authed(http.HandlerFunc(e.serveWarmList)))
	mux.Handle("GET /warm/{id}", authed(http.HandlerFunc(e.serveWarmReport)))
	mux.Handle("DELETE /warm/{id}", authed(http.HandlerFunc(e.serveWarmCancel)))
	return mux
}

// RequireBearer lets through to h only requests with "Authorization: Bearer <token>"
// (compared in constant time); others get 401 with a WWW-Authenticate challenge for realm.
// An empty token lets nothing through.
func RequireBearer(realm, token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			httpError(w, http.StatusUnauthorized, "missing or wrong bearer token",
				"WWW-Authenticate", `Bearer realm="`+realm+`"`)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (e *Edge) serveStats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	stats := map[string]int64{
		"origin_requests": e.stats.OriginRequests.Load(),
		"hits":            e.stats.Hits.Load(),
		"misses":          e.stats.Misses.Load(),
		"collapsed":       e.stats.Collapsed.Load(),
		"stored":          e.stats.Stored.Load(),
		"memory_bytes":    int64(e.tiers.mem.Weight()),
		"fills_in_flight": int64(e.fills.Len()),
	}
	if e.parents != nil {
		// Which ones are up: reel_edge_parent_up{parent} on /metrics.
		parents := e.parents.parents()
		stats["parents"] = int64(len(parents))
		for _, p := range parents {
			if p.healthy.Load() {
				stats["parents_up"]++
			}
		}
	}
	out := map[string]any{"warm": e.warmStats()} // the warm-up jobs (warm.go)
	for k, v := range stats {
		out[k] = v
	}
	json.NewEncoder(w).Encode(out)
}

// purgeTarget is what a purge request names: one URL, a prefix or a tag, hard or soft.
type purgeTarget struct {
	kind, value, mode string
}

// query is the target as purge parameters (what a cluster purge forwards).
func (t purgeTarget) query() url.Values {
	return url.Values{t.kind: {t.value}, "mode": {t.mode}}
}

// parsePurge reads the target of a purge request; the error is the 400's reason.
func parsePurge(q url.Values) (purgeTarget, string) {
	t := purgeTarget{mode: "hard"}
	if m := q.Get("mode"); m != "" && m != "soft" && m != "hard" {
		return t, "mode must be soft or hard"
	} else if m != "" {
		t.mode = m
	}
	switch {
	case q.Get("url") != "":
		t.kind, t.value = "url", q.Get("url")
		if u, err := url.Parse(t.value); err != nil || u.Host == "" {
			return t, "url must be absolute, e.g. http://host/path"
		}
	case q.Get("prefix") != "":
		t.kind, t.value = "prefix", q.Get("prefix")
		if u, err := url.Parse(t.value); err != nil || u.Host == "" {
			return t, "prefix must be an absolute URL, e.g. http://host/vod/"
		}
	case q.Get("tag") != "":
		t.kind, t.value = "tag", q.Get("tag")
	default:
		return t, "give url, prefix or tag"
	}
	return t, ""
}

// purgeResult is what a purge did here.
type purgeResult struct {
	n    int
	mode string
}

// applyPurge purges t in this node's tiers.
func (e *Edge) applyPurge(t purgeTarget) purgeResult {
	soft := t.mode == "soft"
	var keys []string
	switch t.kind {
	case "url":
		u, _ := url.Parse(t.value)
		keys = e.urlKeys(u) // every variant its rules' key settings make (keyview.go)
	case "prefix":
		u, _ := url.Parse(t.value)
		pu := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
		prefix := cachekey.URLPart(e.keyOfURL(pu, nil)) // the URL's, whatever else is keyed
		keys = e.storedKeys(func(k string) bool { return strings.HasPrefix(k, prefix) })
	case "tag":
		keys = e.tiers.tags.take(t.value)
	}
	n := 0
	for _, k := range keys {
		if e.purge(k, soft) {
			n++
		}
	}
	e.m.purges.WithLabelValues(t.kind, t.mode).Inc()
	return purgeResult{n: n, mode: t.mode}
}

// servePurge: POST /purge. With cluster=1 the purge goes to the whole cluster (purgefan.go);
// otherwise it is applied here only, once per id= when one is given (a forwarded purge).
func (e *Edge) servePurge(c *clusterPurge) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		t, bad := parsePurge(q)
		if bad == "" && q.Has("id") && !validPurgeID(q.Get("id")) {
			bad = errPurgeID.Error()
		}
		if bad != "" {
			httpError(w, http.StatusBadRequest, bad)
			return
		}
		switch q.Get("cluster") {
		case "", "0":
		case "1":
			e.serveClusterPurge(w, r, c, q, t)
			return
		default:
			httpError(w, http.StatusBadRequest, "cluster must be 1 (the whole cluster) or 0 (this node)")
			return
		}
		answer := map[string]any{"mode": t.mode}
		if id := q.Get("id"); id != "" {
			answer["id"] = id
			if !c.ids.add(id, c.now()) {
				answer["purged"], answer["already"] = 0, true
				writeJSON(w, answer)
				return
			}
		}
		answer["purged"] = e.applyPurge(t).n
		writeJSON(w, answer)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// purge drops (hard) or marks for revalidation (soft) every variant stored under primary,
// in both tiers. A soft-purged object is revalidated before reuse but still answers when the
// origin fails (stale-if-error).
func (e *Edge) purge(primary string, soft bool) bool {
	if !soft {
		return e.tiers.invalidate(primary)
	}
	e.tiers.gen(primary).Add(1)
	found := false
	if entry, ok := e.tiers.mem.Lookup(primary); ok {
		for vk, obj := range entry.Variants {
			c := *obj
			c.Invalidated = true
			e.tiers.mem.Put(primary, entry.Vary, vk, &c)
		}
		found = true
	}
	if e.tiers.disk != nil && e.tiers.disk.MarkInvalidated(primary) {
		found = true
	}
	return found
}
