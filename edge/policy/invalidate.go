package policy

import (
	"net/http"
	"net/url"
	"strings"
)

// Invalidations lists the URIs whose stored responses must be invalidated after req got a
// response with status and header h (RFC 9111 §4.4): for an unsafe method — anything but
// GET, HEAD, OPTIONS and TRACE, unknown methods included — answered with a non-error status
// (2xx, 3xx), the target URI, and the Location and Content-Location URIs when they share its
// origin (scheme, host, port: invalidating another origin's entries would let one site purge
// another's). URIs are absolute, relative references resolved against the target, without
// fragments; the target comes first. nil when nothing is invalidated.
func Invalidations(req *http.Request, status int, h http.Header) []*url.URL {
	if req == nil || req.URL == nil || status < 200 || status > 399 {
		return nil
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return nil
	}
	target := targetURI(req)
	out := []*url.URL{target}
	for _, name := range []string{"Location", "Content-Location"} {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		u, err := target.Parse(v)
		if err != nil || !sameOrigin(u, target) {
			continue
		}
		u.Fragment, u.RawFragment = "", ""
		dup := false
		for _, o := range out {
			dup = dup || o.String() == u.String()
		}
		if !dup {
			out = append(out, u)
		}
	}
	return out
}

// targetURI rebuilds the absolute target URI of a request received by a server, whose URL
// usually holds only the path (RFC 9110 §7.1).
func targetURI(req *http.Request) *url.URL {
	u := *req.URL
	u.User = nil
	if u.Scheme == "" {
		u.Scheme = "http"
		if req.TLS != nil {
			u.Scheme = "https"
		}
	}
	if u.Host == "" {
		u.Host = req.Host
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	u.Fragment, u.RawFragment = "", ""
	return &u
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) &&
		effectivePort(a) == effectivePort(b)
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}
