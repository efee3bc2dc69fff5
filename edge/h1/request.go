package h1

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// protoError is a request the server refuses before any handler sees it: the status to
// answer and a short reason for the body. Every protoError closes the connection, because
// after a framing error the next request's first byte can't be found reliably.
type protoError struct {
	status int
	reason string
}

func (e *protoError) Error() string { return strconv.Itoa(e.status) + " " + e.reason }

func badRequest(reason string) *protoError { return &protoError{http.StatusBadRequest, reason} }

var (
	errHeaderTooLarge = &protoError{http.StatusRequestHeaderFieldsTooLarge, "request header fields too large"}
	errURITooLong     = &protoError{http.StatusRequestURITooLong, "request target too long"}
)

// head is the parsed request line and header section of one request.
type head struct {
	method, target string
	major, minor   int
	header         http.Header
	host           string
	contentLength  int64 // -1 when the body is chunked; 0 when there is none
	chunked        bool
	framing        bool // a field frame looks at is present (see framingField)
	close          bool // the client asked to close, or HTTP/1.0 without keep-alive
	expectContinue bool
}

// reader reads request heads from a connection's bufio.Reader within a byte budget for the
// whole head. Lines longer than the bufio buffer are assembled in scratch. A connection keeps
// one reader, and its buffers, for all its requests.
type reader struct {
	br      *bufio.Reader
	budget  int
	scratch []byte
	// last holds the connection's previous value of each field: keep-alive clients repeat
	// most fields verbatim on every request, and reusing the string saves an allocation each.
	last map[string]string
	// fields collects a header section's fields before they go into the request's map, whose
	// values then share one allocation.
	fields []field
}

type field struct{ key, value string }

// maxRemembered bounds reader.last per connection.
const maxRemembered = 32

// value returns v as a string, reusing the connection's previous value of the field if equal.
func (r *reader) value(key string, v []byte) string {
	if r.last == nil {
		return string(v)
	}
	if prev, ok := r.last[key]; ok && prev == string(v) {
		return prev
	}
	s := string(v)
	if len(r.last) < maxRemembered || r.last[key] != "" {
		r.last[key] = s
	}
	return s
}

// line returns the next line without its terminator. A line may end in CRLF or, as RFC 9112
// §2.2 allows a recipient to accept, in a bare LF; a CR anywhere else is invalid (§2.2).
// tooLong is the error when the line would overrun the budget.
func (r *reader) line(tooLong *protoError) ([]byte, error) {
	r.scratch = r.scratch[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.budget -= len(chunk)
		if r.budget < 0 {
			return nil, tooLong
		}
		if err == bufio.ErrBufferFull {
			r.scratch = append(r.scratch, chunk...)
			continue
		}
		if err != nil {
			return nil, err
		}
		line := chunk
		if len(r.scratch) > 0 {
			r.scratch = append(r.scratch, chunk...)
			line = r.scratch
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if bytes.IndexByte(line, '\r') >= 0 {
			return nil, badRequest("bare CR in request head")
		}
		return line, nil
	}
}

// readHead reads one request head into h. io.EOF before the first byte means the client closed
// an idle connection; every other failure is a *protoError or the connection's read error.
func (r *reader) readHead(h *head, maxBytes int) error {
	*h = head{}
	r.budget = maxBytes
	var line []byte
	var err error
	// RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
	for range 4 {
		if line, err = r.line(errURITooLong); err != nil || len(line) > 0 {
			break
		}
	}
	if err != nil {
		return err
	}
	if err := h.parseRequestLine(line); err != nil {
		return err
	}
	return h.readFields(r)
}

// parseRequestLine reads "method SP request-target SP HTTP-version" (RFC 9112 §3).
func (h *head) parseRequestLine(line []byte) error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return badRequest("malformed request line")
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return badRequest("malformed request line")
	}
	method, target, version := line[:sp1], rest[:sp2], rest[sp2+1:]
	if !isToken(method) {
		return badRequest("malformed method")
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return badRequest("malformed request target")
		}
	}
	major, minor, ok := parseVersion(version)
	if !ok {
		return badRequest("malformed HTTP version")
	}
	if major != 1 {
		// RFC 9110 §15.6.6. An HTTP/2 prior-knowledge preface ("PRI * HTTP/2.0") lands here too.
		return &protoError{http.StatusHTTPVersionNotSupported, "HTTP version not supported"}
	}
	h.method = internMethod(method)
	h.target = string(target)
	h.major, h.minor = major, minor
	return nil
}

// parseVersion reads "HTTP/d.d" (RFC 9112 §2.3).
func parseVersion(v []byte) (major, minor int, ok bool) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' || !isDigit(v[5]) || !isDigit(v[7]) {
		return 0, 0, false
	}
	return int(v[5] - '0'), int(v[7] - '0'), true
}

// readFields reads the header section up to its empty line (RFC 9112 §5) and applies the
// message-framing rules of §6 and the Host rules of §3.2.
func (h *head) readFields(r *reader) error {
	hosts := 0
	r.fields = r.fields[:0]
	for {
		line, err := r.line(errHeaderTooLarge)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			// §5.2: obsolete line folding; a server MAY reject it with 400, and a cache in front
			// of other servers should: folding is a classic request-smuggling vector.
			return badRequest("obsolete line folding")
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return badRequest("malformed header field")
		}
		name := line[:colon]
		if !isToken(name) {
			// §5.1: no whitespace is allowed between the field name and the colon.
			return badRequest("malformed header field name")
		}
		value := trimOWS(line[colon+1:])
		if !validFieldValue(value) {
			return badRequest("invalid character in header field value")
		}
		key := canonicalKey(name)
		if key == "Host" {
			hosts++
			h.host = r.value(key, value)
			continue
		}
		r.fields = append(r.fields, field{key, r.value(key, value)})
		h.framing = h.framing || framingField(key)
	}
	// One backing array holds every value, as net/textproto does: a field that occurs once —
	// nearly all of them — takes a one-element slice of it (capped, so that an append by a
	// handler copies rather than overwrites the next field's value).
	h.header = make(http.Header, len(r.fields))
	vals := make([]string, len(r.fields))
	for i, f := range r.fields {
		vs := h.header[f.key]
		if vs == nil {
			vs = vals[i : i : i+1]
		}
		h.header[f.key] = append(vs, f.value)
	}
	clear(r.fields) // the request's strings stay alive in its header, not in the buffer
	return h.frame(hosts)
}

// framingField reports whether frame looks the field up: most requests have none of these.
func framingField(key string) bool {
	switch key {
	case "Transfer-Encoding", "Content-Length", "Connection", "Expect":
		return true
	}
	return false
}

// frame applies the rules that decide the message's body length and the connection's fate.
func (h *head) frame(hosts int) error {
	// RFC 9112 §3.2: exactly one valid Host in HTTP/1.1.
	switch {
	case hosts > 1:
		return badRequest("more than one Host")
	case hosts == 0 && h.minor >= 1:
		return badRequest("missing Host")
	case !validHost(h.host):
		return badRequest("invalid Host")
	}
	if !h.framing {
		h.close = h.minor == 0 // §9.3: HTTP/1.0 closes without "Connection: keep-alive"
		return nil
	}
	te, hasTE := h.header["Transfer-Encoding"]
	cl, hasCL := h.header["Content-Length"]
	if hasTE {
		if h.minor == 0 {
			// §6.1: Transfer-Encoding in an HTTP/1.0 message means the framing is faulty.
			return badRequest("Transfer-Encoding in an HTTP/1.0 request")
		}
		if hasCL {
			// §6.3 (3): both present may be an attempt to smuggle a request; a server MAY reject
			// it, and a cache shared by many clients does.
			return badRequest("both Content-Length and Transfer-Encoding")
		}
		codings := splitList(te)
		if len(codings) == 0 || !strings.EqualFold(codings[len(codings)-1], "chunked") {
			// §6.3 (4): chunked must be the final coding or the length can't be determined.
			return badRequest("chunked is not the final transfer coding")
		}
		if len(codings) > 1 {
			// §6.1: a coding the server does not understand (it would have to decode it).
			return &protoError{http.StatusNotImplemented, "unsupported transfer coding"}
		}
		h.chunked, h.contentLength = true, -1
		delete(h.header, "Transfer-Encoding")
	} else if hasCL {
		// RFC 9110 §8.6: a list of identical values may be taken as one; anything else is an error.
		n := int64(-1)
		for _, v := range splitList(cl) {
			m, err := strconv.ParseInt(v, 10, 64)
			if err != nil || m < 0 || !allDigits(v) || (n >= 0 && m != n) {
				return badRequest("invalid Content-Length")
			}
			n = m
		}
		if n < 0 {
			return badRequest("invalid Content-Length")
		}
		h.contentLength = n
		h.header["Content-Length"] = []string{strconv.FormatInt(n, 10)}
	}
	conn := h.header["Connection"]
	if h.minor == 0 {
		h.close = !hasToken(conn, "keep-alive")
	} else {
		h.close = hasToken(conn, "close")
	}
	if exp, ok := h.header["Expect"]; ok {
		// RFC 9110 §10.1.1: 100-continue is the only expectation defined; others get 417.
		if len(exp) != 1 || !strings.EqualFold(strings.TrimSpace(exp[0]), "100-continue") {
			return &protoError{http.StatusExpectationFailed, "unsupported expectation"}
		}
		h.expectContinue = h.minor >= 1 && (h.chunked || h.contentLength > 0)
		delete(h.header, "Expect")
	}
	return nil
}

// request builds the *http.Request the handler sees, shaped as net/http's server shapes it:
// Host moved out of the header, URL from the request target (RFC 9112 §3.2), RequestURI set.
// An origin-form target's URL is built in u, which the caller allocates (with the request's
// context, see reqAlloc); other forms get a URL of their own.
func (h *head) request(ctx context.Context, u *url.URL) (*http.Request, error) {
	var err error
	if h.method == http.MethodConnect && !strings.HasPrefix(h.target, "/") {
		u = &url.URL{Host: h.target} // authority-form (§3.2.3)
	} else if h.target == "*" {
		// Asterisk-form (§3.2.4) is for a server-wide OPTIONS only: any other method with it
		// names no resource, and forwarding it would make one up.
		if h.method != http.MethodOptions {
			return nil, badRequest("asterisk-form request target is only for OPTIONS")
		}
		u = &url.URL{Path: "*"}
	} else if originForm(h.target, u) {
	} else if u, err = url.ParseRequestURI(h.target); err != nil {
		return nil, badRequest("malformed request target")
	}
	host := h.host
	if u.Host != "" {
		// §3.2.2: the absolute-form's authority replaces the Host field.
		host = u.Host
	}
	// WithContext on an empty request allocates the one Request the handler gets, with its
	// context set (the field is unexported; a literal and then WithContext would allocate two).
	r := blankRequest.WithContext(ctx)
	r.Method = h.method
	r.URL = u
	r.Proto = protos[h.minor]
	r.ProtoMajor, r.ProtoMinor = 1, h.minor
	r.Header = h.header
	r.ContentLength = h.contentLength
	r.Close = h.close
	r.Host = host
	r.RequestURI = h.target
	return r, nil
}

var (
	blankRequest = &http.Request{}
	protos       = []string{"HTTP/1.0", "HTTP/1.1", "HTTP/1.2", "HTTP/1.3", "HTTP/1.4", "HTTP/1.5", "HTTP/1.6", "HTTP/1.7", "HTTP/1.8", "HTTP/1.9"}
)

// originForm splits the common request target — "/path?query" without percent-encoding — into
// u the way url.ParseRequestURI would, without its general parser; false sends other targets
// there.
func originForm(target string, u *url.URL) bool {
	if target == "" || target[0] != '/' {
		return false
	}
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		if !plainPathChar[path[i]] {
			return false
		}
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}

// plainPathChar marks the bytes url.URL keeps as they are in a path (RFC 3986 unreserved and
// the sub-delimiters it doesn't escape); a path of only these needs no unescaping and no RawPath.
var plainPathChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "-_.~/$&+,:;=@" {
		t[c] = true
	}
	return t
}()

// tokenChar marks the tchar bytes of RFC 9110 §5.6.2.
var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken[T string | []byte](b T) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i++ {
		if !tokenChar[b[i]] {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// validFieldValue: RFC 9110 §5.5 field content (VCHAR, obs-text, SP, HTAB); CR, LF and NUL are
// never allowed, and other controls are refused as net/http refuses them.
func validFieldValue(v []byte) bool {
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// hostChar marks the bytes an authority (RFC 3986 §3.2: reg-name, IP-literal, port) may hold.
var hostChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = tokenChar[c]
	}
	for _, c := range "!$&'()*+,;=:[]%" {
		t[c] = true
	}
	for _, c := range "^`|" { // tchar but not in an authority
		t[c] = false
	}
	return t
}()

// validHost reports whether a Host value is an authority (RFC 9112 §3.2, RFC 3986 §3.2); the
// empty value is allowed (§3.2: a request without an authority sends an empty Host).
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if !hostChar[h[i]] {
			return false
		}
	}
	return true
}

// splitList splits comma-separated list values (RFC 9110 §5.6.1), dropping empty members.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for m := range strings.SplitSeq(v, ",") {
			if m = strings.TrimSpace(m); m != "" {
				out = append(out, m)
			}
		}
	}
	return out
}

func hasToken(vals []string, tok string) bool {
	for _, v := range vals {
		for m := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(m), tok) {
				return true
			}
		}
	}
	return false
}
