package edge

import (
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"

	"github.com/reelvideo/reel/edge/token"
)

// tokenGate is the signed-URL check's setup, from Config.Tokens: nil when tokens are off, and
// then the request flow costs one nil check.
type tokenGate struct {
	keys    map[string][]byte // by id; the default key also under "" (token.Verify)
	param   string            // the query parameter
	cookie  string            // the cookie's name
	prefix  string            // the path form's prefix, with its trailing '/': "/tok/"
	require bool              // paths no rule speaks for need a token
}

func newTokenGate(t Tokens) *tokenGate {
	if t.keys == nil {
		return nil
	}
	d := t.withDefaults()
	return &tokenGate{keys: t.keys, param: d.QueryParam, cookie: d.Cookie, prefix: d.PathPrefix + "/", require: d.Require}
}

// tokenRefusals are the answers to a token that doesn't pass, by token's error: the 403's
// reason and the reason label of reel_edge_token_rejected_total.
var tokenRefusals = []struct {
	err           error
	reason, label string
}{
	{token.ErrMalformed, "malformed token", "malformed"},
	{token.ErrUnknownKey, "unknown token key id", "unknown_key"},
	{token.ErrSignature, "bad token signature", "signature"},
	{token.ErrExpired, "token expired", "expired"},
	{token.ErrNotYet, "token not yet valid", "not_yet_valid"},
	{token.ErrPath, "token not valid for this path", "path"},
	{token.ErrIP, "token not valid for this address", "address"},
	{errTokenMissing, "token missing", "missing"},
}

var errTokenMissing = errors.New("token missing")

// checkToken is the token step of the request flow, right after route (its requirement
// depends on the rules) and before lookup (hits are checked too). It takes any token out of
// the request — the path form, the query parameter and the cookie — so that neither the cache
// key nor the origin sees one and N viewers with N tokens share one entry and one fill; then,
// where the path needs a token, it verifies the first found (path form, then query, then
// cookie) against the path without it and the client's address. It gives the rule for the
// path without its path-form token (route's, or the path routed again), the reason to answer
// 403 with ("" lets the request go on), and the token to carry into a manifest's URIs: a valid
// token that came in the query (tokenrespond.go), "" otherwise — the path form needs no
// carrying (relative URIs resolve under it), nor the cookie (the browser sends it again).
func (e *Edge) checkToken(r *http.Request, rl *ruling) (*ruling, string, string) {
	g := e.tokens
	tok, inPath, ok := g.takeFromPath(r.URL)
	if inPath {
		_, rl = e.route(r)
	}
	q := g.takeFromQuery(r.URL)
	if tok == "" {
		tok = q
	}
	if c := g.takeFromCookie(r.Header); tok == "" {
		tok = c
	}
	fromQuery := q != "" && !inPath
	var err error
	switch {
	case !ok:
		err = token.ErrMalformed // a path form whose path can't be told
	case !e.tokenRequired(rl):
		// Not needed here, but a valid query token is still carried on: the manifest's
		// segments may need it (a rule can leave masters open and protect the media).
		if fromQuery {
			if _, err := token.Verify(q, cleanPath(r.URL.Path), clientAddr(r), e.now(), g.keys); err == nil {
				return rl, "", q
			}
		}
		return rl, "", ""
	case tok == "":
		err = errTokenMissing
	default:
		_, err = token.Verify(tok, cleanPath(r.URL.Path), clientAddr(r), e.now(), g.keys)
	}
	if err == nil {
		if fromQuery {
			return rl, "", q
		}
		return rl, "", ""
	}
	refusal := tokenRefusals[0] // malformed, for an error Verify doesn't document
	for _, t := range tokenRefusals {
		if errors.Is(err, t.err) {
			refusal = t
			break
		}
	}
	e.m.tokenRejected.WithLabelValues(refusal.label).Inc()
	return rl, refusal.reason, ""
}

// tokenRequired reports whether a request needs a token: as the most specific of its rules
// that says, else as tokens.require.
func (e *Edge) tokenRequired(rl *ruling) bool {
	if rl.token != "" {
		return rl.token == tokenRequired
	}
	return e.tokens.require
}

// takeFromPath takes a path-form token out of u: /tok/<token>/rest becomes /rest. The token is
// one segment of the escaped path (its '/' percent-encoded); ok is false for a path form
// without a token or a path after it.
func (g *tokenGate) takeFromPath(u *url.URL) (tok string, found, ok bool) {
	if !strings.HasPrefix(u.Path, g.prefix) {
		return "", false, true
	}
	rest, ok := strings.CutPrefix(u.EscapedPath(), g.prefix)
	seg, after, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || seg == "" {
		return "", true, false
	}
	tok, err := url.PathUnescape(seg)
	p, err2 := url.PathUnescape("/" + after)
	if err != nil || err2 != nil {
		return "", true, false
	}
	u.Path, u.RawPath = p, "/"+after
	return tok, true, true
}

// takeFromQuery removes the token parameter from u's query and returns its first value.
func (g *tokenGate) takeFromQuery(u *url.URL) string {
	if !strings.Contains(u.RawQuery, g.param) {
		return ""
	}
	var tok string
	found := false
	kept := make([]string, 0, 4)
	for _, pair := range strings.Split(u.RawQuery, "&") {
		name, v, _ := strings.Cut(pair, "=")
		if n, err := url.QueryUnescape(name); err == nil && n == g.param {
			if !found {
				if tok, err = url.QueryUnescape(v); err != nil {
					tok = v // Verify will call it malformed
				}
			}
			found = true
			continue
		}
		kept = append(kept, pair)
	}
	if found {
		u.RawQuery = strings.Join(kept, "&")
	}
	return tok
}

// takeFromCookie removes the token cookie from h's Cookie lines (and a line left empty) and
// returns its first value.
func (g *tokenGate) takeFromCookie(h http.Header) string {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return ""
	}
	var tok string
	found := false
	kept := make([]string, 0, len(lines))
	for _, line := range lines {
		if !strings.Contains(line, g.cookie) {
			kept = append(kept, line)
			continue
		}
		var rest []string
		for _, c := range strings.Split(line, ";") {
			c = strings.TrimSpace(c)
			name, v, _ := strings.Cut(c, "=")
			if strings.TrimSpace(name) == g.cookie {
				if !found {
					tok = strings.Trim(strings.TrimSpace(v), `"`)
				}
				found = true
				continue
			}
			if c != "" {
				rest = append(rest, c)
			}
		}
		if len(rest) > 0 {
			kept = append(kept, strings.Join(rest, "; "))
		}
	}
	switch {
	case !found:
	case len(kept) == 0:
		delete(h, "Cookie")
	default:
		h["Cookie"] = kept
	}
	return tok
}

// cleanPath is p with dot segments and doubled slashes removed (its trailing '/' kept): what
// a token's ACL is matched against, so that /live/demo/../../secret is not under /live/demo/.
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// clientAddr is the address of r's client connection (invalid if RemoteAddr holds none).
func clientAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(r.RemoteAddr)
	return a.Unmap()
}
