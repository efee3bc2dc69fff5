package packager

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/cpix"
)

// Encryption asks Package for Common Encryption (ISO/IEC 23001-7) of every track, with one
// content key (KeyID, Key) or with the keys of a CPIX document. Only key IDs reach the
// presentation (tenc, MPD, playlists); keys never do.
type Encryption struct {
	// Scheme is the protection scheme: "cenc" (AES-CTR, per-sample IVs) or "cbcs" (AES-CBC with
	// the 1:9 pattern for video and whole blocks for audio, one constant IV per track in tenc);
	// or SchemeAES128, HLS whole-segment encryption (see aes128.go: Key, KeyURI and IV only).
	// With CPIX it may be empty: the document's commonEncryptionScheme then decides.
	Scheme string
	// KeyID is the 16-byte key ID (the default KID in tenc and in the MPD).
	KeyID []byte
	// Key is the 16-byte AES-128 content key.
	Key []byte
	// IV, when set, is the first initialization vector of the first track: for cenc 8 bytes
	// (per-sample IVs of 8 bytes, as CMAF requires) or 16 bytes; for cbcs 16 bytes, the
	// constant IV. Later tracks start far from it so that no IV is used twice under the one key.
	// Meant for reproducible output; when empty each track gets a random IV (8 bytes for cenc,
	// 16 for cbcs).
	IV []byte
	// KeyURI, when set, is the key's URI for HLS clients: every media playlist then carries an
	// EXT-X-KEY (METHOD=SAMPLE-AES for cbcs, SAMPLE-AES-CTR for cenc) and the master playlist an
	// EXT-X-SESSION-KEY (KEYFORMAT="identity", beside the ClearKey and DRM systems' tags).
	KeyURI string
	// CPIX, when set, gives the keys instead of KeyID, Key and IV: each track gets the key its
	// usage rules name for the track's type, size and channels (one key for all without rules),
	// with the key's explicitIV when it has one, and the DRM systems' signalling of that key in
	// its init segment (pssh), MPD and playlists. A document with several key periods is refused:
	// periods are for live.
	CPIX *cpix.Document
	// CPIXName names the document in errors (its file or URL); "CPIX" when empty.
	CPIXName string

	trackKeys []keyOfTrack // CPIX: each track's key, by track index (pickKeys)
	// ClearKeyLicense, when set, is a ClearKey license server's URL, signalled in the MPD
	// (dashif:Laurl).
	ClearKeyLicense string
}

// check validates e; its messages name the field as the CLI's flags do. With a CPIX document it
// sets Scheme from the document when it was left empty.
func (e *Encryption) check() error {
	if e.CPIX != nil {
		return e.checkCPIX()
	}
	if e.Scheme == SchemeAES128 {
		return e.checkAES128()
	}
	switch {
	case e.Scheme != "cenc" && e.Scheme != "cbcs":
		return fmt.Errorf("encryption scheme %q is not supported (only cenc, cbcs and aes-128)", e.Scheme)
	case len(e.KeyID) != 16:
		return fmt.Errorf("key id is %d bytes, want 16", len(e.KeyID))
	case len(e.Key) != 16:
		return fmt.Errorf("key is %d bytes, want 16", len(e.Key))
	case len(e.IV) != 0 && len(e.IV) != 8 && len(e.IV) != 16:
		return fmt.Errorf("iv is %d bytes, want 8 or 16", len(e.IV))
	case strings.ContainsAny(e.KeyURI, "\"\r\n"):
		// An HLS quoted-string cannot hold these (RFC 8216 §4.2).
		return errors.New("key URI holds a double quote or a line break")
	case e.Scheme == "cbcs" && len(e.IV) == 8:
		// mp4ff would pad an 8-byte constant IV with zeros to 16 bytes; a 16-byte one is what
		// players expect (and what HLS SAMPLE-AES uses), so ask for it.
		return errors.New("iv is 8 bytes, want 16 for cbcs (a constant IV)")
	}
	return nil
}

// checkCPIX validates e with a CPIX document: the scheme agrees with the document's, the
// document fits VOD, its IVs fit the scheme.
func (e *Encryption) checkCPIX() error {
	d := e.CPIX
	switch {
	case len(e.KeyID) > 0 || len(e.Key) > 0 || len(e.IV) > 0:
		return errors.New("key id, key and iv come from the CPIX document: give neither with it")
	case strings.ContainsAny(e.KeyURI, "\"\r\n"):
		return errors.New("key URI holds a double quote or a line break")
	}
	scheme, err := d.Scheme()
	if err != nil {
		return e.cpixErr(err)
	}
	switch {
	case e.Scheme == "" && scheme == "":
		return e.cpixErr(errors.New("no encryption scheme: the keys set no commonEncryptionScheme, give one (cenc or cbcs)"))
	case e.Scheme == "":
		e.Scheme = scheme
	case scheme != "" && scheme != e.Scheme:
		return e.cpixErr(fmt.Errorf("encryption scheme %s, but the CPIX document's keys ask for %s", e.Scheme, scheme))
	case e.Scheme != "cenc" && e.Scheme != "cbcs":
		return fmt.Errorf("encryption scheme %q is not supported with a CPIX document (only cenc and cbcs)", e.Scheme)
	}
	if _, err := d.VODPeriod(); err != nil {
		return e.cpixErr(err)
	}
	for _, k := range d.Keys {
		if e.Scheme == "cbcs" && len(k.ExplicitIV) == 8 {
			return e.cpixErr(fmt.Errorf("key %s: explicitIV is 8 bytes, want 16 for cbcs (a constant IV)", k.KID))
		}
	}
	return nil
}

// cpixErr says which document err is about.
func (e *Encryption) cpixErr(err error) error {
	name := e.CPIXName
	if name == "" {
		name = "CPIX"
	}
	return fmt.Errorf("%s: %w", name, err)
}

// pickKeys finds, before anything is written, the CPIX document's key for each track, in the
// order the tracks get their writers (videos, then audios: the track index of
// newTrackEncryptor).
func (e *Encryption) pickKeys(tracks []*inputTrack) error {
	if e.CPIX == nil {
		return nil
	}
	period, err := e.CPIX.VODPeriod()
	if err != nil {
		return e.cpixErr(err)
	}
	e.trackKeys = nil
	for _, t := range tracks {
		ct := cpix.Track{Type: manifest.Video, Pixels: uint64(t.width) * uint64(t.height), Period: period}
		if t.kind == manifest.Audio {
			ct = cpix.Track{Type: manifest.Audio, Channels: uint64(t.channels), Period: period}
		}
		k, err := e.CPIX.KeyFor(ct)
		if err != nil {
			return e.cpixErr(err)
		}
		e.trackKeys = append(e.trackKeys, keyOfTrack{kid: k.KID[:], key: k.Key, iv: k.ExplicitIV, systems: e.CPIX.SystemsFor(k.KID)})
	}
	return nil
}

// keyOfTrack is the key that protects one track and its signalling.
type keyOfTrack struct {
	kid, key, iv []byte // iv: the track's first IV before the per-track offset; nil: random
	systems      []cpix.DRMSystem
}

// keyFor is the key of the track-th track: e's one key, or the one pickKeys found.
func (e *Encryption) keyFor(track int) (keyOfTrack, error) {
	if e.CPIX == nil {
		return keyOfTrack{kid: e.KeyID, key: e.Key, iv: e.IV}, nil
	}
	if track >= len(e.trackKeys) {
		return keyOfTrack{}, fmt.Errorf("internal error: no key picked for track %d", track)
	}
	return e.trackKeys[track], nil
}

// psshBoxes decodes the systems' pssh boxes for the init segment (cpix.Parse checked them).
func (k keyOfTrack) psshBoxes() ([]*mp4.PsshBox, error) {
	var out []*mp4.PsshBox
	for _, s := range k.systems {
		if len(s.PSSH) == 0 {
			continue
		}
		box, err := mp4.DecodeBox(0, bytes.NewReader(s.PSSH))
		if err != nil {
			return nil, fmt.Errorf("pssh of system %s: %w", s.SystemID, err)
		}
		p, ok := box.(*mp4.PsshBox)
		if !ok {
			return nil, fmt.Errorf("pssh of system %s is a %s box", s.SystemID, box.Type())
		}
		out = append(out, p)
	}
	return out, nil
}

// withCommonPssh adds to pssh the W3C common pssh naming kid (commonPssh, as live init
// segments carry), unless one of the boxes already is a common pssh (a CPIX document may give
// one). Players such as hls.js open a ClearKey session only on the browser's "encrypted" event,
// which fires for a pssh in the init segment; Shaka Packager writes this box by default too.
func withCommonPssh(pssh []*mp4.PsshBox, kid []byte) []*mp4.PsshBox {
	for _, p := range pssh {
		if bytes.Equal(p.SystemID, commonSystemID) {
			return pssh
		}
	}
	return append(pssh, commonPssh([16]byte(kid)))
}

// protection is what the manifests say about a track protected under k.
func (e *Encryption) protection(k keyOfTrack) *manifest.Protection {
	p := &manifest.Protection{Scheme: e.Scheme, KeyURI: e.KeyURI, ClearKeyLicense: e.ClearKeyLicense}
	if e.Scheme == SchemeAES128 {
		p.IV = append([]byte(nil), e.IV...) // a fixed IV is signalled; the default is not
	}
	copy(p.KID[:], k.kid)
	for _, s := range k.systems {
		p.Systems = append(p.Systems, manifest.DRMSystem{
			ID:                    s.SystemID,
			PSSH:                  s.PSSH,
			ContentProtectionData: s.ContentProtectionData,
			KeyURI:                s.URIExtXKey,
			HLSMaster:             s.HLSMaster,
			HLSMedia:              s.HLSMedia,
		})
	}
	return p
}

// trackEncryptor encrypts one track's fragments. mp4ff does the work (InitProtect for the
// init segment; a FragmentEncryptor per segment for senc/saiz/saio and the samples, with
// NAL-aware subsample ranges for AVC and HEVC that keep NAL headers, parameter sets and SEI
// clear, and whole-sample encryption for audio); this type only carries the per-track state.
//
// cbcs, as mp4ff v0.56.0 does it (ISO/IEC 23001-7 §10.4, CMAF §8.2.3): tenc version 1 with the
// constant IV and no per-sample IVs; video with crypt_byte_block 1, skip_byte_block 9, the
// protected range of each slice NAL starting after its slice header and the CBC chain restarting
// from the constant IV at each subsample; audio with pattern 0:0, that is every whole 16-byte
// block of the sample (the trailing partial block clear), and no senc/saiz/saio at all, since
// there is no per-sample information to carry (CMAF allows them to be left out). enc.IV()
// stays the constant IV.
type trackEncryptor struct {
	key []byte
	ipd *mp4.InitProtectData
	iv  []byte // the IV of the next sample: chained across segments so none is reused
	// tk is the track's key and its signalling, for the manifests.
	tk keyOfTrack
}

// newTrackEncryptor protects the clear init segment of the track-th track (0-based) and returns
// it with the track's encryptor.
// It works on a decoded copy of the init segment, so the input's sample entry (shared with the
// reader) is never changed.
func newTrackEncryptor(e *Encryption, track int, clearInit []byte) (*trackEncryptor, []byte, error) {
	f, err := mp4.DecodeFile(bytes.NewReader(clearInit))
	if err != nil || f.Init == nil {
		return nil, nil, fmt.Errorf("re-reading init segment to protect it: %w", errors.Join(err, errors.New("no moov")))
	}
	tk, err := e.keyFor(track)
	if err != nil {
		return nil, nil, err
	}
	iv := append([]byte(nil), tk.iv...)
	if len(iv) > 0 {
		// One key may serve several tracks, so tracks must not share IVs (a CTR keystream used
		// twice reveals the XOR of two plaintexts). The n-th track starts n·2^40 samples
		// (8-byte IVs) or n·2^104 blocks (16-byte IVs) after the given IV, far beyond any
		// track's length, and the output stays reproducible. For cbcs the same offset gives
		// each track its own constant IV (CBC with a shared IV would show equal first blocks).
		binary.BigEndian.PutUint64(iv, binary.BigEndian.Uint64(iv)+uint64(track)<<40)
	} else {
		iv = make([]byte, 8)
		if e.Scheme == "cbcs" {
			iv = make([]byte, 16)
		}
		if _, err := rand.Read(iv); err != nil {
			return nil, nil, fmt.Errorf("random IV: %w", err)
		}
	}
	var kid mp4.UUID = append([]byte(nil), tk.kid...)
	pssh, err := tk.psshBoxes()
	if err != nil {
		return nil, nil, err
	}
	pssh = withCommonPssh(pssh, tk.kid)
	// mp4ff appends the pssh boxes to moov, after mvex (ISO/IEC 23001-7 §8.1: in moov).
	ipd, err := mp4.InitProtect(f.Init, tk.key, iv, e.Scheme, kid, pssh)
	if err != nil {
		return nil, nil, fmt.Errorf("protecting init segment: %w", err)
	}
	var buf bytes.Buffer
	if err := f.Init.Encode(&buf); err != nil {
		return nil, nil, fmt.Errorf("encoding protected init segment: %w", err)
	}
	return &trackEncryptor{key: tk.key, ipd: ipd, iv: iv, tk: tk}, buf.Bytes(), nil
}

// writeFragment writes moof+mdat to out for samples whose bytes are data (concatenated, decode
// order), encrypting data in place. It returns the lengths of the moof plus mdat header and of
// the whole fragment. Each call is one decode sequence for mp4ff (a fragment starts at a sync
// sample for video); the IV carries on from the previous call.
func (te *trackEncryptor) writeFragment(out io.Writer, seq uint32, base uint64, samples []sample, data []byte) (hdrLen, total int64, err error) {
	frag, err := mp4.CreateFragment(seq, 1)
	if err != nil {
		return 0, 0, fmt.Errorf("encoding fragment %d: %w", seq, err)
	}
	for _, s := range samples {
		frag.AddSample(mp4.NewSample(sampleFlags(s), s.dur, s.size, s.cto), base)
	}
	// The samples' bytes go in as one slice, without a copy (AddFullSample appends them one
	// by one); mp4ff then encrypts them where they are.
	frag.Mdat.SetData(data)
	compactRun(frag.Moof.Traf.Tfhd, frag.Moof.Traf.Trun, samples)
	enc, err := te.ipd.NewFragmentEncryptor(te.key, te.iv)
	if err != nil {
		return 0, 0, fmt.Errorf("encrypting fragment %d: %w", seq, err)
	}
	if err := enc.EncryptFragment(frag); err != nil {
		return 0, 0, fmt.Errorf("encrypting fragment %d: %w", seq, err)
	}
	te.iv = enc.IV()
	// moof's boxes are many small writes: buffer them; the mdat payload passes straight through.
	bw := bufio.NewWriterSize(out, 16<<10)
	if err := frag.Encode(bw); err != nil {
		return 0, 0, fmt.Errorf("encoding fragment %d: %w", seq, err)
	}
	if err := bw.Flush(); err != nil {
		return 0, 0, err
	}
	total = int64(frag.Size())
	return total - int64(len(data)), total, nil
}
