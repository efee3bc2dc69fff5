package edge

import (
	"context"
	"io"
	"net/http"

	"github.com/reelvideo/reel/edge/live"
	"github.com/reelvideo/reel/rangecache/fill"
)

// Detached fills: a fill nobody waits for. A stale-while-revalidate refresh (the client was
// served the stale copy) and a live segment prefetch (no client has asked yet) are the same
// mechanism: join the fill table as the leader of the key's fill, then follow the fill to
// its end in a goroutine of its own — a fill nobody reads stops (abandon.go) — so that what
// it fetched is stored. Requests that arrive meanwhile join it like any fill.

// What a detached fill does with an answer that is not stored and shared.
const (
	// drainUnshared reads it to its end: a refresh's body of unknown length is kept only
	// when read whole (teeStore).
	drainUnshared = true
	// closeUnshared closes it: a prefetch nobody asked for has nothing to keep.
	closeUnshared = false
)

// fillDetached starts a fill of r (as a fill request: a GET of the whole representation) that
// nobody waits for, unless r's object is routed nowhere, bypassed, cached (whole or as
// slices) or being filled already; hooks take part in its steps (live.FillHooks). It returns
// nil when no fill started; otherwise a channel closed once the fill has ended.
func (e *Edge) fillDetached(r *http.Request, hooks live.FillHooks) <-chan struct{} {
	if e.closing.Load() {
		return nil // no new ones once Close has begun
	}
	r = fill.Request(r)
	up, rl := e.route(r)
	if up == nil || rl.bypass {
		return nil
	}
	r = e.keyedView(r, rl)
	res := e.lookup(r, rl)
	if res.obj != nil || (e.cfg.SliceSize > 0 && e.isSliced(res.key)) {
		return nil
	}
	if e.fills.Running(e.fillKey(res, nil)) {
		return nil
	}
	if hooks.Admit != nil && !hooks.Admit(res.key) {
		return nil
	}
	return e.detach(r, up, res, nil, closeUnshared, hooks)
}

// detach joins the fill of res for the fill request r (cond: the stored object it
// revalidates, if any) and follows it to its end, nobody waiting for it. It returns nil when
// a fill of the key was running already (a request started it: nothing to do; hooks.Abandoned
// is told), or else a channel closed once the fill has ended (hooks.Started is told before,
// hooks.Ended how it ended). drain: what to do with an answer not being stored and shared
// (drainUnshared, closeUnshared); a stored body is always followed to its end.
func (e *Edge) detach(r *http.Request, up *upstream, res lookupResult, cond *cached, drain bool, hooks live.FillHooks) <-chan struct{} {
	f, leader := e.joinFill(r, up, res, cond)
	if !leader {
		f.Done()
		if hooks.Abandoned != nil {
			hooks.Abandoned()
		}
		return nil
	}
	if hooks.Started != nil {
		hooks.Started() // before the goroutine below can tell how it ended
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h, body, err := f.Head(context.Background(), true, 0)
		end := live.FillResult{Status: h.Status, Reason: h.Reason, Err: err}
		switch {
		case err == nil && h.Direct != nil:
			if drain {
				io.Copy(io.Discard, h.Direct)
			}
			h.Direct.Close()
		case err == nil && body != nil && (drain || h.Stored):
			end.BodyErr = body.Wait(context.Background())
			end.Stored = h.Stored && end.BodyErr == nil
		}
		f.Done()
		if hooks.Ended != nil {
			hooks.Ended(end)
		}
	}()
	return done
}
