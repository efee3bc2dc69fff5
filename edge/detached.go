package edge

import (
	"context"
	"io"
	"net/http"

	"github.com/reelvideo/reel/rangecache/fill"
)

// Detached fills: a fill nobody waits for. A stale-while-revalidate refresh (the client was
// served the stale copy) and a live segment prefetch (no client has asked yet) are the same
// mechanism: join the fill table as the leader of the key's fill, then follow the fill to
// its end in a goroutine of its own — a fill nobody reads stops (abandon.go) — so that what
// it fetched is stored. Requests that arrive meanwhile join it like any fill.

// detachedEnd is how a detached fill ended.
type detachedEnd struct {
	Stored bool   // the response was stored, its body complete
	Status int    // the response's status (0 when there was none)
	Reason string // why it was not shared, when it was not
	// Err is the fill's failure, BodyErr its body's (read or stored incompletely).
	Err, BodyErr error
}

// fillDetached starts a fill of r (as a fill request: a GET of the whole representation) that
// nobody waits for, unless r's object is routed nowhere, bypassed, cached (whole or as
// slices) or being filled already. admit, called with r's cache key just before the fill is
// joined, may still refuse it (a prefetch without a free slot). It returns nil when no fill
// started; otherwise a channel closed once the fill has ended, after ended (if any) was told
// how.
func (e *Edge) fillDetached(r *http.Request, admit func(key string) bool, ended func(detachedEnd)) <-chan struct{} {
	if e.closing.Load() {
		return nil // no new ones once Close has begun
	}
	r = fillRequest(r)
	up, rule := e.route(r)
	if up == nil || (rule != nil && rule.Bypass) {
		return nil
	}
	res := e.lookup(r, e.policyFor(rule))
	if res.obj != nil || (e.cfg.SliceSize > 0 && e.isSliced(res.key)) {
		return nil
	}
	if e.fills.Running(e.fillKey(res, nil)) {
		return nil
	}
	if admit != nil && !admit(res.key) {
		return nil
	}
	return e.detach(r, up, res, nil, false, ended)
}

// detach joins the fill of res for the fill request r (cond: the stored object it
// revalidates, if any) and follows it to its end, nobody waiting for it. It returns nil when
// a fill of the key was running already (a request started it: nothing to do), or else a
// channel closed once the fill has ended, after ended (if any) was told how. readAll: a
// response not being stored is read to its end too (a refresh's unknown-length body is kept
// only when read whole, teeStore); otherwise it is closed (a prefetch: nobody asked for it,
// nothing to keep), and only a stored body is followed.
func (e *Edge) detach(r *http.Request, up *upstream, res lookupResult, cond *cached, readAll bool, ended func(detachedEnd)) <-chan struct{} {
	e.inflight.Add(1) // before the fill's goroutine exists, so Close can't miss it
	f, leader := e.fills.Join(r.Context(), e.fillKey(res, cond), func(ctx context.Context, f *fill.Fill) {
		defer e.inflight.Done()
		e.runFill(ctx, f, up, r, res, cond)
	})
	if !leader {
		e.inflight.Done()
		f.Done()
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h, body, err := f.Head(context.Background(), true, 0)
		end := detachedEnd{Status: h.Status, Reason: h.Reason, Err: err}
		switch {
		case err == nil && h.Direct != nil:
			if readAll {
				io.Copy(io.Discard, h.Direct)
			}
			h.Direct.Close()
		case err == nil && body != nil && (readAll || h.Stored):
			end.BodyErr = body.Wait(context.Background())
			end.Stored = h.Stored && end.BodyErr == nil
		}
		f.Done()
		if ended != nil {
			ended(end)
		}
	}()
	return done
}
