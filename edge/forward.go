package edge

import (
	"net/http"
	"strings"
)

// What of a client's request reaches the upstream, beyond the hop-by-hop rules: the two
// places where the cache key and the origin could read the same request differently.

// upstreamQuery is the query sent upstream for r. A cacheable request forwards only what its
// key holds (cachekey.Keyer.ForwardQuery): a parameter the key ignores, forwarded, could be
// reflected by the origin into the one entry every client of the key gets
// (`?utm_source=<script>`). A request that is never stored forwards its query as sent.
func (e *Edge) upstreamQuery(r *http.Request, cacheable bool) string {
	if !cacheable {
		return r.URL.RawQuery
	}
	return e.keyer.ForwardQuery(r.URL)
}

// dropUnderscored removes request fields whose names hold '_' unless
// cache.underscores_in_headers allows them (nginx's underscores_in_headers, off by default).
// CGI, PHP, WSGI and Rack origins see fields as HTTP_* variables with '-' turned into '_', so
// "X_Forwarded_Host" reaches them as X-Forwarded-Host: it would slip past the list of
// unkeyed overrides the edge removes, and past Vary matching of any keyed field. Renaming
// '_' to '-' would only protect the names the edge knows of, and a request holding both
// spellings would still let the client choose which one the origin reads; a client that is
// no proxy has no business sending such names, so they are dropped whole.
func (e *Edge) dropUnderscored(h http.Header) {
	if e.cfg.Cache.UnderscoresInHeaders {
		return
	}
	for name := range h {
		if strings.IndexByte(name, '_') >= 0 {
			delete(h, name)
		}
	}
}
