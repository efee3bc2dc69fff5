package main

import (
	"net/http"
	"net/url"
	"os"

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
	return ui.Handler(opt)
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
