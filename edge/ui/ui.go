// Package ui is the web page `reel demo`'s edge serves under /_reel/: a player for every
// presentation (HLS through hls.js, DASH through dash.js) and a live status panel of the
// edge — hit ratios, origin offload, traffic, coalescing, prefetch, tiers, top objects — with
// charts of the last minutes.
//
// The page, its script and its style are this package's own and embedded in the binary. The
// player libraries are not: they come from the npm registry (package.json and
// package-lock.json here, installed by `make ui` into node_modules, never committed) and are
// served at run time from that folder (Options.Vendor, FindVendor). Without them the page
// still loads and says how to install them.
//
// The status numbers come from edge.(*Edge).Snapshot, which reads the same counters as the
// edge's Prometheus /metrics. The page shows nothing the admin API guards beyond those
// aggregate numbers (no token, no purge, no configuration).
//
// Routes, relative to where the handler is mounted (normally /_reel/, see Prefix):
//
//	GET /_reel/                  the player page (?p=NAME&f=hls|llhls|dash picks what plays)
//	GET /_reel/status            the status page alone
//	GET /_reel/app.js, style.css the page's own script and style
//	GET /_reel/api/presentations the presentations, as JSON
//	GET /_reel/api/stats         the edge's counters, derived ratios and the history, as JSON
//	GET /_reel/vendor/hls.min.js, /_reel/vendor/dash.all.min.js   the player libraries
package ui

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/reelvideo/reel/edge"
)

// Prefix is the path the handler serves under. It is reserved: mount the handler there, in
// front of the edge (an http.ServeMux with Prefix → Handler and "/" → the edge).
const Prefix = "/_reel/"

// Kind tells VOD presentations from live ones.
type Kind string

const (
	VOD  Kind = "vod"
	Live Kind = "live"
)

// Presentation is one thing the page can play. URLs are absolute paths on the edge
// (/vod/master.m3u8) or absolute URLs; at least one of HLS and DASH is set.
type Presentation struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	HLS  string `json:"hls,omitempty"`
	DASH string `json:"dash,omitempty"`
	// LowLatency says a live presentation has LL-HLS parts (and low-latency DASH): the page
	// then offers LL-HLS beside HLS.
	LowLatency bool `json:"low_latency,omitempty"`
}

// Options configure the page.
type Options struct {
	Presentations []Presentation
	// Stats reads the edge's counters (normally (*edge.Edge).Snapshot); nil leaves the status
	// panel empty.
	Stats func() edge.Snapshot
	// Vendor is the node_modules folder holding hls.js and dashjs (see FindVendor). Empty or
	// missing: the page loads without players and says how to install them.
	Vendor string
	// History is how far back the status charts reach (default 5 minutes; the edge keeps
	// 10).
	History time.Duration
}

// vendorFiles are the only files served from Options.Vendor, by the name the page asks for.
var vendorFiles = map[string]string{
	"hls.min.js":      "hls.js/dist/hls.min.js",
	"dash.all.min.js": "dashjs/dist/modern/umd/dash.all.min.js",
}

//go:embed static
var static embed.FS

// InstallHint is what to do when the player libraries are missing.
const InstallHint = "the player libraries are not installed: run `make ui` (npm ci in edge/ui), or give their node_modules folder"

// FindVendor finds edge/ui/node_modules with the player libraries installed: looked for
// from the working directory and each folder above it (a checkout of the module), then from
// the executable's folder and the folders above it (bin/reel in a checkout).
func FindVendor() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			starts = append(starts, filepath.Dir(exe))
		}
	}
	for _, dir := range starts {
		for {
			for _, c := range []string{filepath.Join(dir, "edge", "ui", "node_modules"), filepath.Join(dir, "node_modules")} {
				if CheckVendor(c) == nil {
					return c, nil
				}
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New(InstallHint)
}

// CheckVendor reports whether dir holds the player libraries the page needs.
func CheckVendor(dir string) error {
	if dir == "" {
		return errors.New(InstallHint)
	}
	for _, rel := range vendorFiles {
		if st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel))); err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("%s: no %s: %s", dir, rel, InstallHint)
		}
	}
	return nil
}

// Handler serves the page under Prefix.
func Handler(opt Options) http.Handler {
	if opt.History <= 0 {
		opt.History = 5 * time.Minute
	}
	h := &handler{opt: opt}
	h.csp = contentSecurityPolicy(opt.Presentations)
	mux := http.NewServeMux()
	page := h.file("static/index.html", "text/html; charset=utf-8")
	mux.Handle("GET "+Prefix+"{$}", page)
	mux.Handle("GET "+Prefix+"status", page)
	mux.Handle("GET "+Prefix+"app.js", h.file("static/app.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET "+Prefix+"style.css", h.file("static/style.css", "text/css; charset=utf-8"))
	mux.HandleFunc("GET "+Prefix+"api/presentations", h.presentations)
	mux.HandleFunc("GET "+Prefix+"api/stats", h.stats)
	mux.HandleFunc("GET "+Prefix+"vendor/{file}", h.vendor)
	mux.HandleFunc("GET "+strings.TrimSuffix(Prefix, "/"), func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
	})
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			plain(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		plain(w, http.StatusNotFound, "not found")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		mux.ServeHTTP(w, r)
	})
}

type handler struct {
	opt Options
	csp string
}

// contentSecurityPolicy allows the page's own files, the player libraries' workers (blob:)
// and media from the edge itself and from the origins of absolute presentation URLs.
func contentSecurityPolicy(ps []Presentation) string {
	connect := []string{"'self'"}
	for _, p := range ps {
		for _, s := range []string{p.HLS, p.DASH} {
			if u, err := url.Parse(s); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
				if o := u.Scheme + "://" + u.Host; !slices.Contains(connect, o) {
					connect = append(connect, o)
				}
			}
		}
	}
	c := strings.Join(connect, " ")
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"media-src 'self' blob: " + c + "; worker-src 'self' blob:; connect-src " + c + "; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

func (h *handler) file(name, contentType string) http.Handler {
	body, err := static.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-cache")
		if strings.HasPrefix(contentType, "text/html") {
			w.Header().Set("Content-Security-Policy", h.csp)
		}
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(body)))
	})
}

// presentationsJSON is what /api/presentations answers.
type presentationsJSON struct {
	Presentations []Presentation `json:"presentations"`
	// Vendor says whether the player libraries are installed; Hint what to do when not.
	Vendor bool   `json:"vendor"`
	Hint   string `json:"hint,omitempty"`
}

func (h *handler) presentations(w http.ResponseWriter, r *http.Request) {
	out := presentationsJSON{Presentations: h.opt.Presentations, Vendor: CheckVendor(h.opt.Vendor) == nil}
	if out.Presentations == nil {
		out.Presentations = []Presentation{}
	}
	if !out.Vendor {
		out.Hint = InstallHint
	}
	writeJSON(w, out)
}

func (h *handler) vendor(w http.ResponseWriter, r *http.Request) {
	rel, ok := vendorFiles[r.PathValue("file")]
	if !ok {
		plain(w, http.StatusNotFound, "not found")
		return
	}
	if h.opt.Vendor == "" {
		plain(w, http.StatusNotFound, InstallHint)
		return
	}
	f, err := os.Open(filepath.Join(h.opt.Vendor, filepath.FromSlash(rel)))
	if err != nil {
		plain(w, http.StatusNotFound, InstallHint)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		plain(w, http.StatusNotFound, InstallHint)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// statsJSON is what /api/stats answers.
type statsJSON struct {
	// Counters are the edge's totals since it started.
	Counters edge.Snapshot `json:"counters"`
	// Totals are the ratios over those totals (null when there is nothing to divide by).
	Totals Ratios `json:"totals"`
	// History is one point per second over the last minutes (Options.History), oldest
	// first: rates and ratios over the interval since the point before, sampled by the edge
	// in the background (gaps are when the edge was not running); never null.
	History []Point `json:"history"`
}

// Ratios are what the status panel's tiles show.
type Ratios struct {
	// Requests is every client request; Hits those answered from storage without asking the
	// origin (cache label hit or stale).
	Requests int64 `json:"requests"`
	Hits     int64 `json:"hits"`
	// HitRatio is Hits / Requests.
	HitRatio *float64 `json:"hit_ratio"`
	// ByteHitRatio is bytes sent from storage / all bytes sent
	// (reel_edge_response_bytes_total{source="cache"} / the sum over sources).
	ByteHitRatio *float64 `json:"byte_hit_ratio"`
	// OriginOffload is 1 − origin requests / client requests: the share of client requests
	// the origin did not see (read-aheads, prefetches and revalidations count as origin
	// requests).
	OriginOffload *float64 `json:"origin_offload"`
	// ByteOffload is 1 − origin bytes / client bytes: the share of the bytes sent to clients
	// the origin did not have to send (reel_edge_origin_bytes_total against the sum of
	// reel_edge_response_bytes_total); negative when the edge pulls more than it serves.
	ByteOffload *float64 `json:"byte_offload"`
	// PrefetchHitRatio is prefetched objects a client then read / prefetched objects: live
	// segments fetched ahead of players and slices read ahead of range requests together.
	PrefetchHitRatio *float64 `json:"prefetch_hit_ratio"`
}

// Point is one sample of the status charts.
type Point struct {
	Time              time.Time `json:"t"`
	Seconds           float64   `json:"dt"` // the interval the rates are over
	RequestsPerSecond float64   `json:"rps"`
	HitsPerSecond     float64   `json:"hps"`
	BytesPerSecond    float64   `json:"bps"`  // body bytes to clients
	CacheBytesPerSec  float64   `json:"cbps"` // of which from storage
	OriginRequestsPS  float64   `json:"orps"`
	OriginBytesPS     float64   `json:"obps"`
	CollapsedPS       float64   `json:"cps"`
	HitRatio          *float64  `json:"hit_ratio"`
	ByteHitRatio      *float64  `json:"byte_hit_ratio"`
	MemoryBytes       int64     `json:"mem"`
	DiskBytes         int64     `json:"disk"`
}

// ratios derives the status panel's figures from a snapshot's totals.
func ratios(s edge.Snapshot) Ratios {
	var r Ratios
	for _, v := range s.Requests {
		r.Requests += v
	}
	r.Hits = s.Requests["hit"] + s.Requests["stale"]
	r.HitRatio = ratio(float64(r.Hits), float64(r.Requests))
	r.ByteHitRatio = ratio(float64(s.ResponseBytes["cache"]), float64(s.ResponseBytes["cache"]+s.ResponseBytes["origin"]))
	if r.Requests > 0 {
		v := 1 - float64(s.OriginRequests)/float64(r.Requests)
		r.OriginOffload = &v
	}
	if sent := s.ResponseBytes["cache"] + s.ResponseBytes["origin"]; sent > 0 {
		v := 1 - float64(s.OriginBytes)/float64(sent)
		r.ByteOffload = &v
	}
	r.PrefetchHitRatio = ratio(float64(s.Prefetch["used"]+s.LivePrefetch["used"]), float64(s.Prefetch["started"]+s.LivePrefetch["started"]))
	return r
}

func ratio(a, b float64) *float64 {
	if b <= 0 {
		return nil
	}
	v := a / b
	return &v
}

// points turns the edge's samples (edge.Snapshot.History, taken every second in the
// background) into chart points over the last keep: one per sample, with rates and ratios over
// the interval since the sample before. Never nil: a fresh edge's page gets an empty list.
func points(samples []edge.Sample, keep time.Duration) []Point {
	out := []Point{}
	for i := 1; i < len(samples); i++ {
		s, prev := samples[i], samples[i-1]
		dt := s.Time.Sub(prev.Time).Seconds()
		if dt <= 0 || s.Time.Before(samples[len(samples)-1].Time.Add(-keep)) {
			continue
		}
		per := func(a, b int64) float64 { return float64(a-b) / dt }
		cache := s.CacheBytes - prev.CacheBytes
		all := cache + s.OriginSent - prev.OriginSent
		out = append(out, Point{
			Time: s.Time, Seconds: dt,
			RequestsPerSecond: per(s.Requests, prev.Requests),
			HitsPerSecond:     per(s.Hits, prev.Hits),
			BytesPerSecond:    float64(all) / dt,
			CacheBytesPerSec:  float64(cache) / dt,
			OriginRequestsPS:  per(s.OriginRequests, prev.OriginRequests),
			OriginBytesPS:     per(s.OriginBytes, prev.OriginBytes),
			CollapsedPS:       per(s.Collapsed, prev.Collapsed),
			HitRatio:          ratio(float64(s.Hits-prev.Hits), float64(s.Requests-prev.Requests)),
			ByteHitRatio:      ratio(float64(cache), float64(all)),
			MemoryBytes:       s.MemoryBytes,
			DiskBytes:         s.DiskBytes,
		})
	}
	return out
}

func (h *handler) stats(w http.ResponseWriter, r *http.Request) {
	if h.opt.Stats == nil {
		plain(w, http.StatusNotFound, "no statistics")
		return
	}
	s := h.opt.Stats()
	if s.Time.IsZero() {
		s.Time = time.Now()
	}
	writeJSON(w, statsJSON{Counters: s, Totals: ratios(s), History: points(s.History, h.opt.History)})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}
