package edge

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The admin API lives on its own listener and needs a bearer token for everything but
// /healthz: purging is a denial-of-service lever, and metrics reveal traffic.
//
//	POST /purge?url=U[&mode=soft]      one URL (every variant)
//	POST /purge?prefix=U[&mode=soft]   every URL starting with U
//	POST /purge?tag=T[&mode=soft]      every object tagged T by Surrogate-Key or Cache-Tag
//	GET  /stats                        counters as JSON
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
	mux.Handle("POST /purge", authed(http.HandlerFunc(e.servePurge)))
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
		stats["parents"] = int64(len(e.parents.list))
		for _, p := range e.parents.list {
			if p.healthy.Load() {
				stats["parents_up"]++
			}
		}
	}
	json.NewEncoder(w).Encode(stats)
}

func (e *Edge) servePurge(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	soft := q.Get("mode") == "soft"
	if m := q.Get("mode"); m != "" && m != "soft" && m != "hard" {
		httpError(w, http.StatusBadRequest, "mode must be soft or hard")
		return
	}
	mode := "hard"
	if soft {
		mode = "soft"
	}
	var keys []string
	var kind string
	switch {
	case q.Get("url") != "":
		kind = "url"
		u, err := url.Parse(q.Get("url"))
		if err != nil || u.Host == "" {
			httpError(w, http.StatusBadRequest, "url must be absolute, e.g. http://host/path")
			return
		}
		keys = []string{e.keyer.KeyURL(u, nil)}
	case q.Get("prefix") != "":
		kind = "prefix"
		u, err := url.Parse(q.Get("prefix"))
		if err != nil || u.Host == "" {
			httpError(w, http.StatusBadRequest, "prefix must be an absolute URL, e.g. http://host/vod/")
			return
		}
		prefix := e.keyer.KeyURL(&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}, nil)
		seen := map[string]bool{}
		add := func(k string) {
			if strings.HasPrefix(k, prefix) && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
		for k := range e.tiers.mem.Keys() {
			add(k)
		}
		if e.tiers.disk != nil {
			for _, k := range e.tiers.disk.Keys() {
				add(k)
			}
		}
	case q.Get("tag") != "":
		kind = "tag"
		keys = e.tiers.tags.take(q.Get("tag"))
	default:
		httpError(w, http.StatusBadRequest, "give url, prefix or tag")
		return
	}
	n := 0
	for _, k := range keys {
		if e.purge(k, soft) {
			n++
		}
	}
	e.m.purges.WithLabelValues(kind, mode).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"purged": n, "mode": mode})
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
