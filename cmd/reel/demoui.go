package main

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/reelvideo/reel/edge"
	"github.com/reelvideo/reel/edge/ui"
)

// demoVendorEnv names the node_modules folder with the player libraries when it is not the
// checkout's edge/ui/node_modules (found from the working directory or the binary's folder).
const demoVendorEnv = "REEL_UI_VENDOR"

func init() { demoUI = newDemoUI }

// newDemoUI is the page under /_reel/ for the demo's presentations, its status panel reading
// e's counters.
func newDemoUI(e *edge.Edge, presentations []demoPresentation) http.Handler {
	opt := ui.Options{Vendor: demoVendor()}
	if e != nil {
		opt.Stats = e.Snapshot
	}
	for _, p := range presentations {
		opt.Presentations = append(opt.Presentations, ui.Presentation{
			Name: p.Name, Kind: ui.Kind(p.Kind), HLS: edgePath(p.HLS), DASH: edgePath(p.DASH),
			LowLatency: p.Kind == string(ui.Live), // the demo's channel has LL-HLS parts
		})
	}
	return presentationQuery{next: ui.Handler(opt), presentations: presentations}
}

// presentationQuery lets the page's ?p= name a presentation by its short name (vod, live),
// by a prefix of one, or by its display name in any case: the page is sent on to the display
// name it knows. A name matching none, or several, gets a page saying so and listing them,
// where the page itself would silently play the first presentation.
type presentationQuery struct {
	next          http.Handler
	presentations []demoPresentation
}

func (h presentationQuery) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("p")
	if r.URL.Path != ui.Prefix || name == "" || slices.ContainsFunc(h.presentations, func(p demoPresentation) bool { return p.Name == name }) {
		h.next.ServeHTTP(w, r)
		return
	}
	found := findPresentations(h.presentations, name)
	if len(found) == 1 {
		q.Set("p", found[0].Name)
		http.Redirect(w, r, ui.Prefix+"?"+q.Encode(), http.StatusFound)
		return
	}
	problem := "No presentation is called"
	if len(found) > 1 {
		problem = "Several presentations match"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprintf(w, "<!doctype html>\n<title>Reel demo: unknown presentation</title>\n<p>%s %s. Play one of these:</p>\n<ul>\n",
		problem, html.EscapeString(strconv.Quote(name)))
	for _, p := range h.presentations {
		q.Set("p", p.Short)
		fmt.Fprintf(w, "<li><a href=\"%s?%s\">%s</a> (?p=%s)</li>\n",
			ui.Prefix, html.EscapeString(q.Encode()), html.EscapeString(p.Name), html.EscapeString(p.Short))
	}
	fmt.Fprintln(w, "</ul>")
}

// findPresentations is what ?p=name names: the presentations whose display or short name is
// name in any case, else those whose short name starts with it (in any case).
func findPresentations(ps []demoPresentation, name string) []demoPresentation {
	var exact, prefix []demoPresentation
	for _, p := range ps {
		switch {
		case strings.EqualFold(p.Name, name) || strings.EqualFold(p.Short, name):
			exact = append(exact, p)
		case strings.HasPrefix(strings.ToLower(p.Short), strings.ToLower(name)):
			prefix = append(prefix, p)
		}
	}
	if len(exact) > 0 {
		return exact
	}
	return prefix
}

// demoVendor finds the player libraries: $REEL_UI_VENDOR, else the checkout's (ui.FindVendor);
// "" when they are not installed (the page then says how to install them).
func demoVendor() string {
	if dir := os.Getenv(demoVendorEnv); dir != "" {
		return dir
	}
	dir, _ := ui.FindVendor()
	return dir
}

// edgePath turns the demo's URL of a manifest on the edge into a path, so that the page plays
// it from whatever host name the browser reached the edge by.
func edgePath(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return s
	}
	return u.RequestURI()
}
