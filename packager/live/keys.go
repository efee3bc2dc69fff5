package live

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/reelvideo/reel/manifest"
)

// A channel with Encryption set is encrypted with Common Encryption (ISO/IEC 23001-7, cenc or
// cbcs) under one content key per key period. Key periods are keyed by segment number, never by
// the process's clock: segment numbers survive a restart (the segment log) and are the same on
// every instance fed the same input, so the key of a segment is too.
//
// Each key period has its own init segment, init-<period>.mp4 in each track folder, whose tenc
// carries the period's KID. It is written, and listed, before the first segment of its period:
// when a period starts, the next one's init is made too, so players see the coming KID one whole
// key period ahead (HLS lists it at the boundary with EXT-X-KEY and EXT-X-MAP; DASH starts a new
// Period, see manifest.LiveKeys).

// Key is one key period's content key for one kind of track, its ID, and the DRM systems
// that signal it (from a CPIX document: pssh boxes go in the period's init segments, and the
// manifests signal each system).
type Key struct {
	ID    [16]byte
	Value [16]byte // the AES-128 content key
	// Systems signal the key to DRM systems (none: ClearKey only, which is always signalled).
	Systems []manifest.DRMSystem
}

// KeySource gives a channel its keys: which key period a segment belongs to, and that period's
// key for each kind of track. Implementations must be pure functions of their inputs (two
// instances, or a restarted one, must agree), except that a key not known yet (ErrNoKey) may
// become known later; once given, a key never changes.
type KeySource interface {
	// Period is the key period of segment number n. Periods never decrease as n grows.
	Period(n uint64) uint64
	// Key is key period k's key for tracks of kind kind; an error wrapping ErrNoKey when the
	// source does not have it (yet): the channel then publishes nothing of that period.
	Key(k uint64, kind manifest.Kind) (Key, error)
}

// ErrNoKey says a key source does not have a key period's key (a CPIX document that does not
// reach that far yet).
var ErrNoKey = errors.New("key not known")

// FixedKey is one key for every segment and track: a single key period, 0.
func FixedKey(k Key) KeySource { return fixedKey{k} }

type fixedKey struct{ k Key }

func (f fixedKey) Period(uint64) uint64                   { return 0 }
func (f fixedKey) Key(uint64, manifest.Kind) (Key, error) { return f.k, nil }

// SeedKeys derives a key period's KID and key from a secret seed: key period k covers the
// segments numbered k·Rotation to (k+1)·Rotation−1, and
//
//	KID(k) = HMAC-SHA256(seed, "reel live kid" ‖ uint64be(k))[0:16]
//	key(k) = HMAC-SHA256(seed, "reel live key" ‖ uint64be(k))[0:16]
//
// The KID is published (tenc, manifests) and reveals nothing of the key or the seed (HMAC is a
// PRF); whoever holds the seed — a key server, a second packager instance — derives every key.
type SeedKeys struct {
	Seed     []byte
	Rotation uint64 // segments per key period
}

// KID and key labels of SeedKeys (changing them changes every key ever derived).
const (
	seedKIDLabel = "reel live kid"
	seedKeyLabel = "reel live key"
)

func (s SeedKeys) Period(n uint64) uint64 { return n / s.Rotation }

// Key is the same for every kind of track.
func (s SeedKeys) Key(k uint64, _ manifest.Kind) (Key, error) {
	var out Key
	copy(out.ID[:], prf(s.Seed, seedKIDLabel, k))
	copy(out.Value[:], prf(s.Seed, seedKeyLabel, k))
	return out, nil
}

// check refuses a seed too short to be a secret and a rotation of no segments.
func (s SeedKeys) check() error {
	switch {
	case len(s.Seed) < 16:
		return fmt.Errorf("key seed is %d bytes, want at least 16", len(s.Seed))
	case s.Rotation == 0:
		return errors.New("key rotation must be at least 1 segment")
	}
	return nil
}

func prf(seed []byte, label string, k uint64) []byte {
	m := hmac.New(sha256.New, seed)
	m.Write([]byte(label))
	m.Write(binary.BigEndian.AppendUint64(nil, k))
	return m.Sum(nil)
}

// Encryption configures a channel's Common Encryption.
type Encryption struct {
	Scheme string // "cenc" or "cbcs"
	Keys   KeySource
	// KeyURI, when set, is given to HLS clients as the key's URI (KEYFORMAT="identity"), with
	// "{kid}" replaced by the period's KID in hex; the ClearKey EXT-X-KEY is written either way.
	KeyURI string
	// Protector does the encryption (packager.NewLiveProtector): this package never parses
	// sample data.
	Protector Protector
}

// Protector encrypts one channel's media with Common Encryption.
type Protector interface {
	// Track prepares the encryption of one track, given its clear init segment.
	Track(id string, clearInit []byte) (TrackProtector, error)
}

// TrackProtector encrypts one track. Calls come from one goroutine at a time (the channel's
// lock), fragments in decode order.
type TrackProtector interface {
	// Init is the track's init segment protected with key (tenc with key.ID); the same key gives
	// the same bytes, so an init written by an earlier run can be checked.
	Init(key Key) ([]byte, error)
	// Fragment encrypts one fragment (moof+mdat, as a source delivers it) of segment number n
	// with key; first says it starts the segment (a new decode sequence).
	Fragment(data []byte, n uint64, first bool, key Key) ([]byte, error)
}

func (e *Encryption) check() error {
	switch {
	case e.Scheme != "cenc" && e.Scheme != "cbcs":
		return fmt.Errorf("encryption scheme %q is not cenc or cbcs", e.Scheme)
	case e.Keys == nil || e.Protector == nil:
		return errors.New("encryption without keys or protector")
	case strings.ContainsAny(e.KeyURI, "\"\r\n"):
		return errors.New("key URI holds a double quote or a line break")
	}
	if s, ok := e.Keys.(SeedKeys); ok {
		return s.check()
	}
	return nil
}

// initName is the init segment of key period k.
func initName(k uint64) string { return "init-" + strconv.FormatUint(k, 10) + ".mp4" }

// parseInitName reads "init-K.mp4".
func parseInitName(f string) (uint64, bool) {
	body, ok := strings.CutPrefix(f, "init-")
	if !ok {
		return 0, false
	}
	if body, ok = strings.CutSuffix(body, ".mp4"); !ok || body == "" || (len(body) > 1 && body[0] == '0') {
		return 0, false
	}
	k, err := strconv.ParseUint(body, 10, 64)
	return k, err == nil
}

// keyPeriod is what a manifest says of key period k: never a key, only the video and audio
// KIDs and the DRM systems that signal them.
func (e *Encryption) keyPeriod(k, first uint64) (manifest.KeyPeriod, error) {
	v, err := e.Keys.Key(k, manifest.Video)
	if err != nil {
		return manifest.KeyPeriod{}, err
	}
	a, err := e.Keys.Key(k, manifest.Audio)
	if err != nil {
		return manifest.KeyPeriod{}, err
	}
	kp := manifest.KeyPeriod{Index: k, FirstNumber: first, KID: v.ID, Systems: v.Systems, InitURI: initName(k)}
	if a.ID != v.ID {
		kp.AudioKID, kp.AudioSystems = a.ID, a.Systems
	}
	return kp, nil
}
