package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// A pool member that dies in the middle of a body (a redundant live origin killed, a member
// restarted) would leave the client with a truncated object. When the members serve the same
// representation under the same strong ETag — redundant `reel live` instances publish the same
// bytes under the same URLs, and any replicated storage does — the rest can come from another
// member instead: a request for the missing bytes (Range) of that very representation
// (If-Match), accepted only as a 206 starting where the body broke off, with the same ETag.
// Anything else and the body fails as it would have: bytes of two representations are never
// joined.

// resumingBody is a pool response's body that continues from another member when its own
// breaks off.
type resumingBody struct {
	cur    io.ReadCloser
	e      *Edge
	ctx    context.Context
	up     *upstream
	r      *http.Request
	extra  http.Header
	cache  bool // the request is cacheable (originRequest's cacheable)
	etag   string
	next   int64 // offset in the representation of the next byte to read
	end    int64 // offset of the last byte wanted, -1: to the end
	tried  []*poolMember
	resume int // resumptions so far
}

// maxResumes bounds the members one body may go through.
const maxResumes = 3

// resumable wraps resp's body (a GET's 200 or 206 from member m of up's pool) so that it can
// continue from another member, when the pool has another and the response's ETag is strong.
func (e *Edge) resumable(ctx context.Context, up *upstream, r *http.Request, cacheable bool, extra http.Header, m *poolMember, resp *http.Response) {
	etag := resp.Header.Get("ETag")
	if r.Method != http.MethodGet || len(up.pool.members) < 2 || etag == "" || strings.HasPrefix(etag, "W/") {
		return
	}
	b := &resumingBody{cur: resp.Body, e: e, ctx: ctx, up: up, r: r, extra: extra, cache: cacheable, etag: etag, end: -1, tried: []*poolMember{m}}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusPartialContent:
		first, last, ok := contentRange(resp.Header.Get("Content-Range"))
		if !ok {
			return
		}
		b.next, b.end = first, last
	default:
		return
	}
	resp.Body = b
}

// contentRange reads "bytes FIRST-LAST/LENGTH" (RFC 9110 §14.4).
func contentRange(v string) (first, last int64, ok bool) {
	v, ok = strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, false
	}
	span, _, ok := strings.Cut(v, "/")
	a, b, ok2 := strings.Cut(span, "-")
	if !ok || !ok2 {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first {
		return 0, 0, false
	}
	return first, last, true
}

func (b *resumingBody) Read(p []byte) (int, error) {
	n, err := b.cur.Read(p)
	b.next += int64(n)
	if err == nil || err == io.EOF || n > 0 {
		return n, err
	}
	if b.ctx.Err() != nil || b.resume >= maxResumes {
		return n, err
	}
	if rerr := b.continueElsewhere(err); rerr != nil {
		b.e.log.Debug("origin body not resumed on another member", "origin", b.up.pool.name, "err", rerr)
		return n, err
	}
	return b.Read(p)
}

// continueElsewhere replaces the broken body by the rest of the representation from another
// member; broke is why the body broke off.
func (b *resumingBody) continueElsewhere(broke error) error {
	p := b.up.pool
	b.tried[len(b.tried)-1].h.failed(broke, p.now())
	m := p.pick(pickKey(b.r), b.tried)
	if m == nil {
		return errors.New("no other member")
	}
	if !p.budget.retry(p.now()) {
		p.exhausted.Inc()
		return errors.New("retry budget exhausted")
	}
	b.tried = append(b.tried, m)
	b.resume++
	at := *b.up
	at.url, at.client, at.blocking = m.up.url, m.up.client, m.up.blocking
	out, err := b.e.originRequest(b.ctx, &at, b.r, b.cache)
	if err != nil {
		return err
	}
	for k, v := range b.extra {
		out.Header[k] = v
	}
	for _, h := range []string{"If-None-Match", "If-Modified-Since", "If-Range", "If-Unmodified-Since"} {
		out.Header.Del(h)
	}
	want := fmt.Sprintf("bytes=%d-", b.next)
	if b.end >= 0 {
		want += strconv.FormatInt(b.end, 10)
	}
	out.Header.Set("Range", want)
	out.Header.Set("If-Match", b.etag)
	p.retries.Inc()
	resp, err := b.e.doOrigin(b.ctx, &at, out)
	if err != nil {
		m.h.failed(err, p.now())
		return err
	}
	first, _, ok := contentRange(resp.Header.Get("Content-Range"))
	if resp.StatusCode != http.StatusPartialContent || !ok || first != b.next || resp.Header.Get("ETag") != b.etag {
		resp.Body.Close()
		return fmt.Errorf("%s answered %s (Content-Range %q, ETag %s) for %s of %s", m.id, resp.Status,
			resp.Header.Get("Content-Range"), resp.Header.Get("ETag"), want, b.etag)
	}
	b.cur.Close()
	b.cur = resp.Body
	b.e.log.Info("origin body resumed on another member", "origin", p.name, "member", m.id, "from", b.next, "etag", b.etag)
	return nil
}

func (b *resumingBody) Close() error { return b.cur.Close() }
