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
)

// Encryption asks Package for Common Encryption (ISO/IEC 23001-7) of every track with one
// content key. Only the key ID reaches the presentation (tenc, MPD); the key never does.
type Encryption struct {
	// Scheme is the protection scheme: "cenc" (AES-CTR, per-sample IVs) or "cbcs" (AES-CBC with
	// the 1:9 pattern for video and whole blocks for audio, one constant IV per track in tenc);
	// or SchemeAES128, HLS whole-segment encryption (see aes128.go: Key, KeyURI and IV only).
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
	// EXT-X-SESSION-KEY. Without it only the MPD signals the encryption.
	KeyURI string
}

// check validates e; its messages name the field as the CLI's flags do.
func (e *Encryption) check() error {
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

// protection is what the manifests say about e.
func (e *Encryption) protection() *manifest.Protection {
	p := &manifest.Protection{Scheme: e.Scheme, KeyURI: e.KeyURI}
	if e.Scheme == SchemeAES128 {
		p.IV = append([]byte(nil), e.IV...) // a fixed IV is signalled; the default is not
	}
	copy(p.KID[:], e.KeyID)
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
	iv := append([]byte(nil), e.IV...)
	if len(iv) > 0 {
		// One key serves every track, so tracks must not share IVs (a CTR keystream used
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
	var kid mp4.UUID = append([]byte(nil), e.KeyID...)
	ipd, err := mp4.InitProtect(f.Init, e.Key, iv, e.Scheme, kid, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("protecting init segment: %w", err)
	}
	var buf bytes.Buffer
	if err := f.Init.Encode(&buf); err != nil {
		return nil, nil, fmt.Errorf("encoding protected init segment: %w", err)
	}
	return &trackEncryptor{key: e.Key, ipd: ipd, iv: iv}, buf.Bytes(), nil
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
