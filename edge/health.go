package edge

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// health is the up/down state of one upstream — a member of an origin pool, or a parent —
// judged by its requests (passively: maxFails failures in a row take it out) and, when it
// is probed, by probes (actively: a probe's verdict stands until the next, and only a probe
// brings it back). One that is down without probes rests for coolOff, then one request at a
// time may try it (half-open): a success brings it back.
type health struct {
	log      *slog.Logger
	kind     string // "parent", "origin member": what the log lines start with
	key      string // the log's key for name: "parent", "member"
	name     string
	downNote string // what being down means, for the log
	maxFails int
	coolOff  time.Duration
	probed   bool

	healthy atomic.Bool
	fails   atomic.Int64 // consecutive failures
	mu      sync.Mutex
	trial   time.Time // when a down member may next be tried (not probed)
}

func newHealth(log *slog.Logger, kind, key, name, downNote string, maxFails int, coolOff time.Duration, probed bool) *health {
	h := &health{log: log, kind: kind, key: key, name: name, downNote: downNote, maxFails: max(maxFails, 1), coolOff: coolOff, probed: probed}
	// Up until shown otherwise: the first requests need not wait for a probe.
	h.healthy.Store(true)
	return h
}

// available reports whether a request may go to the member now: it is up, or it rests no
// longer and nothing but requests can bring it back.
func (h *health) available(now time.Time) bool {
	if h.healthy.Load() {
		return true
	}
	if h.probed {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return !now.Before(h.trial)
}

// chosen notes that a request goes to the member: a down one's trial is taken, so that the
// requests after it wait for its verdict (another cool-off) rather than all trying at once.
func (h *health) chosen(now time.Time) {
	if h.healthy.Load() {
		return
	}
	h.mu.Lock()
	h.trial = now.Add(h.coolOff)
	h.mu.Unlock()
}

// passed records a request's success: the member is up, its failures forgotten.
func (h *health) passed() {
	if h.fails.Load() != 0 {
		h.fails.Store(0)
	}
	if !h.healthy.Load() && !h.probed {
		h.set(true, nil)
	}
}

// failed records a request's failure; maxFails in a row mark the member down.
func (h *health) failed(why error, now time.Time) {
	if h.fails.Add(1) < int64(h.maxFails) {
		return
	}
	h.mu.Lock()
	h.trial = now.Add(h.coolOff)
	h.mu.Unlock()
	h.set(false, why)
}

// set records a verdict, logging a change once.
func (h *health) set(up bool, why error) {
	if h.healthy.Swap(up) == up {
		return
	}
	if up {
		h.log.Info(h.kind+" up again", h.key, h.name)
	} else {
		h.log.Warn(h.kind+" down: "+h.downNote, h.key, h.name, "err", why)
	}
}
