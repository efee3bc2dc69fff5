package packager

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/packager/live"
)

// NewLiveProtector returns the Common Encryption of live channels (live.Protector) for scheme
// ("cenc" or "cbcs"): mp4ff encrypts, as for VOD (see trackEncryptor for what cenc and cbcs
// protect), fragment by fragment as a live source delivers them, under the key of each
// fragment's key period.
//
// IVs: cbcs uses one constant IV per track and key, derived from the key and the track ID
// (HMAC-SHA256(key, "reel live cbcs iv" ‖ track ID), first 16 bytes), so a period's init
// segment is the same bytes in every run and on every instance, and the segments a previous
// run left in the DVR window still decrypt with it. cenc uses 8-byte per-sample IVs (CMAF)
// counting up from a random start per track and run: a restarted channel may reuse a segment
// number under the same key, and a random start keeps it from reusing an IV.
func NewLiveProtector(scheme string) (live.Protector, error) {
	if scheme != "cenc" && scheme != "cbcs" {
		return nil, fmt.Errorf("encryption scheme %q is not supported (only cenc and cbcs)", scheme)
	}
	return liveProtector{scheme: scheme}, nil
}

type liveProtector struct{ scheme string }

func (p liveProtector) Track(id string, clearInit []byte) (live.TrackProtector, error) {
	t := &liveTrackProtector{scheme: p.scheme, id: id, clearInit: clearInit, byKID: map[[16]byte]*mp4.InitProtectData{}}
	if p.scheme == "cenc" {
		t.iv = make([]byte, 8)
		if _, err := rand.Read(t.iv); err != nil {
			return nil, fmt.Errorf("random IV: %w", err)
		}
	}
	// Protecting the init once checks that the codec can be encrypted before any fragment is.
	if _, _, err := t.protect(live.Key{}); err != nil {
		return nil, err
	}
	return t, nil
}

// liveTrackProtector is one track's encryption state.
type liveTrackProtector struct {
	scheme    string
	id        string
	clearInit []byte
	byKID     map[[16]byte]*mp4.InitProtectData // the keys in use: the current and the next period's
	iv        []byte                            // cenc: the next sample's IV
	enc       *mp4.FragmentEncryptor            // the segment in progress (one decode sequence)
	encKID    [16]byte
}

// commonSystemID is the W3C "Common" PSSH system ID (W3C EME, "cenc" Initialization Data
// Format): a pssh of version 1 that lists the KIDs and carries no data.
var commonSystemID = mp4.UUID{0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b}

// commonPssh names kid in a period's init segment, so that the browser fires an "encrypted"
// event with it when a player appends the init of a new key period: hls.js opens its
// ClearKey session for a new KID on that event (the playlist's data: URI gives it the KID,
// not initData), and it names the key in the license request. It carries no key.
func commonPssh(kid [16]byte) *mp4.PsshBox {
	return &mp4.PsshBox{Version: 1, SystemID: commonSystemID, KIDs: []mp4.UUID{mp4.UUID(kid[:])}}
}

// systemPsshs are the pssh boxes of a period's init segment: the W3C common one, then each DRM
// system's (from a CPIX document), as VOD init segments have them.
func systemPsshs(key live.Key) ([]*mp4.PsshBox, error) {
	out := []*mp4.PsshBox{commonPssh(key.ID)}
	for _, s := range key.Systems {
		if len(s.PSSH) == 0 || s.ID == [16]byte(commonSystemID) {
			continue
		}
		box, err := decodePssh(s.PSSH)
		if err != nil {
			return nil, fmt.Errorf("pssh of DRM system %x: %w", s.ID, err)
		}
		out = append(out, box)
	}
	return out, nil
}

// decodePssh reads a whole pssh box (a CPIX document's, checked when it was parsed; mp4ff
// panics on some malformed boxes, so it is checked again).
func decodePssh(b []byte) (p *mp4.PsshBox, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("corrupt pssh box: %v", r)
		}
	}()
	box, err := mp4.DecodeBox(0, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	p, ok := box.(*mp4.PsshBox)
	if !ok {
		return nil, fmt.Errorf("a %s box, not pssh", box.Type())
	}
	return p, nil
}

// cbcsIVLabel derives the cbcs constant IV (changing it changes every init segment).
const cbcsIVLabel = "reel live cbcs iv"

// constantIV is the cbcs constant IV of this track under key.
func (t *liveTrackProtector) constantIV(key live.Key) []byte {
	m := hmac.New(sha256.New, key.Value[:])
	m.Write([]byte(cbcsIVLabel))
	m.Write([]byte(t.id))
	return m.Sum(nil)[:16]
}

// protect makes the init segment protected with key, and what encrypting under it needs.
func (t *liveTrackProtector) protect(key live.Key) ([]byte, *mp4.InitProtectData, error) {
	f, err := mp4.DecodeFile(bytes.NewReader(t.clearInit))
	if err != nil || f.Init == nil {
		return nil, nil, fmt.Errorf("track %s: re-reading init segment to protect it: %w", t.id, errors.Join(err, errors.New("no moov")))
	}
	iv := make([]byte, 8) // cenc: only its size reaches the init segment (tenc's per-sample IV size)
	if t.scheme == "cbcs" {
		iv = t.constantIV(key)
	}
	psshs, err := systemPsshs(key)
	if err != nil {
		return nil, nil, fmt.Errorf("track %s: %w", t.id, err)
	}
	ipd, err := mp4.InitProtect(f.Init, key.Value[:], iv, t.scheme, mp4.UUID(key.ID[:]), psshs)
	if err != nil {
		return nil, nil, fmt.Errorf("track %s: protecting init segment: %w", t.id, err)
	}
	var buf bytes.Buffer
	if err := f.Init.Encode(&buf); err != nil {
		return nil, nil, fmt.Errorf("track %s: encoding protected init segment: %w", t.id, err)
	}
	return buf.Bytes(), ipd, nil
}

func (t *liveTrackProtector) Init(key live.Key) ([]byte, error) {
	init, ipd, err := t.protect(key)
	if err != nil {
		return nil, err
	}
	t.keep(key.ID, ipd)
	return init, nil
}

// keep remembers ipd for kid, forgetting keys of periods long gone (a channel holds two at a
// time: the current period's and the next one's).
func (t *liveTrackProtector) keep(kid [16]byte, ipd *mp4.InitProtectData) {
	if len(t.byKID) >= 4 {
		for k := range t.byKID {
			if k != t.encKID {
				delete(t.byKID, k)
			}
		}
	}
	t.byKID[kid] = ipd
}

func (t *liveTrackProtector) Fragment(data []byte, n uint64, first bool, key live.Key) ([]byte, error) {
	ipd := t.byKID[key.ID]
	if ipd == nil {
		var err error
		if _, ipd, err = t.protect(key); err != nil {
			return nil, err
		}
		t.keep(key.ID, ipd)
	}
	frag, err := decodeFragment(data)
	if err != nil {
		return nil, fmt.Errorf("track %s: segment %d: %w", t.id, n, err)
	}
	if first || t.enc == nil || t.encKID != key.ID {
		iv := t.iv
		if t.scheme == "cbcs" {
			iv = t.constantIV(key)
		}
		if t.enc, err = ipd.NewFragmentEncryptor(key.Value[:], iv); err != nil {
			return nil, fmt.Errorf("track %s: segment %d: %w", t.id, n, err)
		}
		t.encKID = key.ID
	}
	if err := t.enc.EncryptFragment(frag); err != nil {
		t.enc = nil // its state is unknown: the next fragment starts afresh
		return nil, fmt.Errorf("track %s: segment %d: encrypting: %w", t.id, n, err)
	}
	if t.scheme == "cenc" {
		t.iv = append(t.iv[:0], t.enc.IV()...)
	}
	var out bytes.Buffer
	out.Grow(len(data) + 64 + 32*int(frag.Moof.Traf.Trun.SampleCount()))
	if err := frag.Encode(&out); err != nil {
		return nil, fmt.Errorf("track %s: segment %d: encoding: %w", t.id, n, err)
	}
	return out.Bytes(), nil
}

// decodeFragment reads one moof+mdat (a live source's fragment) for mp4ff to encrypt. A source
// makes these with fragmentHeader, but they are checked like outside bytes: mp4ff panics on
// some malformed boxes.
func decodeFragment(data []byte) (f *mp4.Fragment, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("corrupt fragment: %v", r)
		}
	}()
	r := bytes.NewReader(data)
	b, err := mp4.DecodeBox(0, r)
	if err != nil {
		return nil, fmt.Errorf("decoding fragment: %w", err)
	}
	moof, ok := b.(*mp4.MoofBox)
	if !ok || moof.Traf == nil || moof.Traf.Trun == nil || len(moof.Trafs) != 1 || len(moof.Traf.Truns) != 1 {
		return nil, fmt.Errorf("fragment does not start with a single-track moof (%s)", b.Type())
	}
	b, err = mp4.DecodeBox(moof.Size(), r)
	if err != nil {
		return nil, fmt.Errorf("decoding fragment: %w", err)
	}
	mdat, ok := b.(*mp4.MdatBox)
	if !ok {
		return nil, fmt.Errorf("fragment: %s after moof, want mdat", b.Type())
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("fragment: %d bytes after mdat", r.Len())
	}
	f = mp4.NewFragment()
	f.AddChild(moof)
	f.AddChild(mdat)
	return f, nil
}
