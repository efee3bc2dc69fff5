package live

import (
	"net/http"
	"time"

	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/manifest"
)

// unknownTarget stands in for the target duration of a live manifest that gives none.
const unknownTarget = 2 * time.Second

// Limits are the most a live manifest described by info may be kept fresh and then served
// stale.
func (l *Manifests) Limits(info manifest.Info) (ttl, stale time.Duration) {
	target := info.Target
	if target <= 0 {
		target = unknownTarget
	}
	ttl = time.Duration(float64(target) * l.cfg.MaxTTLFraction)
	if info.PartTarget > 0 {
		ttl = min(ttl, info.PartTarget)
	}
	// Lifetimes are whole seconds (policy.CapFreshness rounds down); 0 would send every
	// request to the origin.
	return max(ttl, time.Second), time.Duration(float64(target) * l.cfg.MaxStaleFraction)
}

// capFreshness rewrites the freshness directives of a live manifest's header h to its Limits.
func (l *Manifests) capFreshness(info manifest.Info, status int, h http.Header, respTime time.Time, pol policy.Options) {
	ttl, stale := l.Limits(info)
	policy.CapFreshness(status, h, respTime, pol, ttl, stale)
}

// OnRevalidated caps a live manifest's header again after a 304 merged the origin's new
// fields into it (RFC 9111 §4.3.4): the stored object (its status, size and body, read from
// memory or the disk tier by body) is classified again.
func (l *Manifests) OnRevalidated(r *http.Request, pol policy.Options, merged http.Header, respTime time.Time, status int, size int64, body func() ([]byte, error)) {
	if l.cfg.Off || status != http.StatusOK || !isManifest(r.URL.Path, merged) || size > l.cfg.MaxManifestSize {
		return
	}
	data, err := body()
	if err != nil {
		return
	}
	if info, ok := l.classify(r, merged, data); ok && info.Live {
		l.capFreshness(info, status, merged, respTime, pol)
	}
}
