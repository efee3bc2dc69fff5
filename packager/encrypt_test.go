package packager

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/Eyevinn/hls-m3u8/m3u8"
	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/internal/testkit"
	"github.com/reelvideo/reel/manifest"
)

// Test key material: fixed, so that a failure can be reproduced by hand with ffmpeg's
// -decryption_key.
var (
	testKID, _ = hex.DecodeString("0123456789abcdef0123456789abcdef")
	testKey, _ = hex.DecodeString("00112233445566778899aabbccddeeff")
)

func testEncryption() *Encryption {
	return &Encryption{Scheme: "cenc", KeyID: testKID, Key: testKey}
}

// packagedTwice packages inputs clear and encrypted.
func packagedTwice(t *testing.T, inputs []string) (clearDir string, clearP *manifest.Presentation, encDir string, encP *manifest.Presentation) {
	return packagedTwiceWith(t, inputs, testEncryption())
}

// packagedTwiceWith packages inputs clear and encrypted with e.
func packagedTwiceWith(t *testing.T, inputs []string, e *Encryption) (clearDir string, clearP *manifest.Presentation, encDir string, encP *manifest.Presentation) {
	t.Helper()
	ctx := context.Background()
	clearDir = filepath.Join(t.TempDir(), "clear")
	encDir = filepath.Join(t.TempDir(), "enc")
	var err error
	if clearP, err = Package(ctx, Options{Inputs: inputs, Output: clearDir}); err != nil {
		t.Fatalf("Package clear: %v", err)
	}
	if encP, err = Package(ctx, Options{Inputs: inputs, Output: encDir, Encryption: e}); err != nil {
		t.Fatalf("Package encrypted: %v", err)
	}
	return clearDir, clearP, encDir, encP
}

func decodeMP4(t *testing.T, path string) *mp4.File {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	return f
}

// fullSamples returns the samples of every fragment of a media segment file.
func fullSamples(t *testing.T, seg *mp4.MediaSegment, trex *mp4.TrexBox) []mp4.FullSample {
	t.Helper()
	var out []mp4.FullSample
	for _, frag := range seg.Fragments {
		fss, err := frag.GetFullSamples(trex)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fss...)
	}
	return out
}

// TestEncryptRoundTrip is issue 15's round trip: the encrypted twin of a clear presentation has
// the same segments with the same timing; its init segments carry the protection boxes; every
// sample's protected bytes differ from the clear sample and its clear bytes do not; and
// decrypting every segment with mp4ff and the key gives back the clear samples byte for byte.
// The H.264 ladder with AAC, and HEVC; cenc and cbcs. cbcs samples are also decrypted by this
// test's own pattern decryptor (cbcsDecrypt), so that mp4ff is not checked only against itself.
func TestEncryptRoundTrip(t *testing.T) {
	t.Run("ladder", func(t *testing.T) { testEncryptRoundTrip(t, ladder, 4, testEncryption()) })
	t.Run("hevc", func(t *testing.T) {
		testEncryptRoundTrip(t, []string{samplePath("hevc_360p.mp4")}, 0, testEncryption())
	})
	for _, iv := range []string{"0011223344556677", "00112233445566778899aabbccddeeff"} {
		t.Run("iv "+iv, func(t *testing.T) {
			e := testEncryption()
			e.IV, _ = hex.DecodeString(iv)
			testEncryptRoundTrip(t, ladder, 4, e)
		})
	}
	t.Run("cbcs ladder", func(t *testing.T) { testEncryptRoundTrip(t, ladder, 4, testCbcs()) })
	t.Run("cbcs hevc", func(t *testing.T) {
		testEncryptRoundTrip(t, []string{samplePath("hevc_360p.mp4")}, 0, testCbcs())
	})
	t.Run("cbcs iv", func(t *testing.T) {
		e := testCbcs()
		e.IV, _ = hex.DecodeString("00112233445566778899aabbccddeeff")
		testEncryptRoundTrip(t, ladder, 4, e)
	})
}

func testCbcs() *Encryption {
	return &Encryption{Scheme: "cbcs", KeyID: testKID, Key: testKey}
}

// testEncryptRoundTrip is TestEncryptRoundTrip for inputs, with wantTracks tracks (0: any).
func testEncryptRoundTrip(t *testing.T, inputs []string, wantTracks int, e *Encryption) {
	clearDir, clearP, encDir, encP := packagedTwiceWith(t, inputs, e)
	if clearP.Protection != nil || encP.Protection == nil || !bytes.Equal(encP.Protection.KID[:], testKID) {
		t.Fatalf("Protection: clear %+v, encrypted %+v", clearP.Protection, encP.Protection)
	}
	clearTracks, encTracks := clearP.Tracks(), encP.Tracks()
	if len(clearTracks) != len(encTracks) || (wantTracks > 0 && len(clearTracks) != wantTracks) {
		t.Fatalf("%d clear tracks, %d encrypted, want %d each", len(clearTracks), len(encTracks), wantTracks)
	}
	// A CTR keystream must never be used twice: with one key for every track, each sample of
	// the presentation needs its own IV (chained across fragments and segments, random per track).
	ivs := map[string]string{}
	for i, ct := range clearTracks {
		et := encTracks[i]
		t.Run(ct.ID, func(t *testing.T) {
			if et.ID != ct.ID || len(et.Segments) != len(ct.Segments) {
				t.Fatalf("encrypted track %s with %d segments, clear %s with %d", et.ID, len(et.Segments), ct.ID, len(ct.Segments))
			}
			for j := range ct.Segments {
				cs, es := ct.Segments[j], et.Segments[j]
				if cs.Start != es.Start || cs.Duration != es.Duration || cs.URI != es.URI {
					t.Errorf("segment %d: encrypted %+v, clear %+v", j, es, cs)
				}
			}
			tenc := checkProtectedInit(t, filepath.Join(encDir, et.ID, manifest.InitSegmentName), ct.Kind, e.Scheme, ivSize(e))
			if e.Scheme == "cbcs" {
				// The constant IV is the track's IV: tracks must not share one either.
				where := et.ID + " constant IV"
				if prev, ok := ivs[string(tenc.DefaultConstantIV)]; ok {
					t.Fatalf("IV %x used twice: %s and %s", tenc.DefaultConstantIV, prev, where)
				}
				ivs[string(tenc.DefaultConstantIV)] = where
			}
			// cbcs audio has no per-sample information: mp4ff leaves senc, saiz and saio out.
			noSenc := e.Scheme == "cbcs" && ct.Kind == manifest.Audio
			checkIFrames(t, clearDir, ct, encDir, et)

			clearInit := decodeMP4(t, filepath.Join(clearDir, ct.ID, manifest.InitSegmentName)).Init
			encInit := decodeMP4(t, filepath.Join(encDir, et.ID, manifest.InitSegmentName)).Init // for senc
			decInit := decodeMP4(t, filepath.Join(encDir, et.ID, manifest.InitSegmentName)).Init // DecryptInit strips it
			di, err := mp4.DecryptInit(decInit)
			if err != nil {
				t.Fatalf("DecryptInit: %v", err)
			}
			trex := clearInit.Moov.Mvex.Trex
			var samples, protectedBytes int
			for _, s := range ct.Segments {
				clearSeg := decodeMP4(t, filepath.Join(clearDir, ct.ID, s.URI)).Segments[0]
				encFile := decodeMP4(t, filepath.Join(encDir, et.ID, s.URI))
				encSeg := encFile.Segments[0]
				want := fullSamples(t, clearSeg, trex)

				// Before decryption: protected ranges differ, clear ranges are equal.
				k := 0
				for _, frag := range encSeg.Fragments {
					if err := frag.ParseSenc(encInit); err != nil {
						t.Fatalf("%s: ParseSenc: %v", s.URI, err)
					}
					senc := frag.Moof.Traf.Senc
					if noSenc {
						if senc != nil || frag.Moof.Traf.Saiz != nil || frag.Moof.Traf.Saio != nil {
							t.Fatalf("%s: cbcs audio fragment with senc/saiz/saio", s.URI)
						}
						senc = &mp4.SencBox{}
					} else if senc == nil || frag.Moof.Traf.Saiz == nil || frag.Moof.Traf.Saio == nil {
						t.Fatalf("%s: fragment without senc/saiz/saio", s.URI)
					}
					for n, iv := range senc.IVs {
						where := fmt.Sprintf("%s/%s sample %d of fragment %d", et.ID, s.URI, n, frag.Moof.Mfhd.SequenceNumber)
						if prev, ok := ivs[string(iv)]; ok {
							t.Fatalf("IV %x used twice: %s and %s", []byte(iv), prev, where)
						}
						ivs[string(iv)] = where
					}
					fss, err := frag.GetFullSamples(trex)
					if err != nil {
						t.Fatal(err)
					}
					for n, fs := range fss {
						if k >= len(want) {
							t.Fatalf("%s: more encrypted samples than clear", s.URI)
						}
						protectedBytes += compareProtected(t, s.URI, k, want[k].Data, fs.Data, senc, n)
						if e.Scheme == "cbcs" {
							var subs []mp4.SubSamplePattern
							if n < len(senc.SubSamples) {
								subs = senc.SubSamples[n]
							}
							dec := cbcsDecrypt(t, fs.Data, testKey, tenc, subs)
							if !bytes.Equal(dec, want[k].Data) {
								t.Fatalf("%s sample %d: this test's cbcs decryption differs from the clear sample", s.URI, k)
							}
						}
						k++
					}
				}

				if err := mp4.DecryptSegment(encSeg, di, testKey); err != nil {
					t.Fatalf("%s: DecryptSegment: %v", s.URI, err)
				}
				got := fullSamples(t, encSeg, trex)
				if len(got) != len(want) {
					t.Fatalf("%s: %d samples decrypted, %d clear", s.URI, len(got), len(want))
				}
				for n := range want {
					w, g := want[n], got[n]
					if g.DecodeTime != w.DecodeTime || g.Dur != w.Dur || g.Flags != w.Flags || g.CompositionTimeOffset != w.CompositionTimeOffset {
						t.Fatalf("%s sample %d: timing/flags %+v, clear %+v", s.URI, n, g.Sample, w.Sample)
					}
					if !bytes.Equal(g.Data, w.Data) {
						t.Fatalf("%s sample %d: decrypted bytes differ from the clear sample", s.URI, n)
					}
				}
				samples += len(want)
			}
			if samples == 0 || protectedBytes == 0 {
				t.Fatalf("%d samples, %d protected bytes", samples, protectedBytes)
			}
			t.Logf("%d samples decrypted and equal; %d bytes were protected", samples, protectedBytes)
		})
	}
}

// checkIFrames: the I-frame byte ranges of the encrypted track cover its (larger) moof, the
// mdat header and the keyframe, as the clear ones do.
func checkIFrames(t *testing.T, clearDir string, ct *manifest.Track, encDir string, et *manifest.Track) {
	t.Helper()
	if len(et.IFrames) != len(ct.IFrames) {
		t.Fatalf("%d I-frames encrypted, %d clear", len(et.IFrames), len(ct.IFrames))
	}
	keyframe := func(dir string, f manifest.IFrame) (moof []byte, size int64) {
		data, err := os.ReadFile(filepath.Join(dir, ct.ID, f.URI))
		if err != nil {
			t.Fatal(err)
		}
		r := f.Range
		if r.Offset+r.Length > int64(len(data)) || string(data[r.Offset+4:r.Offset+8]) != "moof" {
			t.Fatalf("%s: I-frame range %+v does not start at a moof", f.URI, r)
		}
		moofLen := int64(binary.BigEndian.Uint32(data[r.Offset:]))
		return data[r.Offset : r.Offset+moofLen], r.Length - moofLen - 8
	}
	for i, cf := range ct.IFrames {
		ef := et.IFrames[i]
		if ef.Start != cf.Start || ef.Duration != cf.Duration || ef.URI != cf.URI {
			t.Fatalf("I-frame %d: encrypted %+v, clear %+v", i, ef, cf)
		}
		encMoof, encSize := keyframe(encDir, ef)
		_, clearSize := keyframe(clearDir, cf)
		if encSize != clearSize || !bytes.Contains(encMoof, []byte("senc")) {
			t.Fatalf("I-frame %d: keyframe of %d bytes encrypted (senc in moof: %v), %d clear", i, encSize, bytes.Contains(encMoof, []byte("senc")), clearSize)
		}
	}
}

// checkProtectedInit asserts the protection boxes of an encrypted init segment (ISO/IEC 23001-7
// §8): encv/enca with sinf: frma (the original format), schm with the scheme, schi/tenc with the
// KID; for cbcs a version 1 tenc with a 16-byte constant IV and the pattern 1:9 for video, 0:0
// (whole blocks) for audio (§10.4). It returns the tenc.
func checkProtectedInit(t *testing.T, path string, kind manifest.Kind, scheme string, wantIVSize byte) *mp4.TencBox {
	t.Helper()
	return checkProtectedInitKID(t, path, kind, scheme, wantIVSize, testKID)
}

// checkProtectedInitKID is checkProtectedInit for a track under kid.
func checkProtectedInitKID(t *testing.T, path string, kind manifest.Kind, scheme string, wantIVSize byte, kid []byte) *mp4.TencBox {
	t.Helper()
	init := decodeMP4(t, path).Init
	entry := init.Moov.Trak.Mdia.Minf.Stbl.Stsd.Children[0]
	var sinf *mp4.SinfBox
	var wantType, wantFormat []string
	switch se := entry.(type) {
	case *mp4.VisualSampleEntryBox:
		sinf, wantType, wantFormat = se.Sinf, []string{"encv"}, []string{"avc1", "avc3", "hvc1", "hev1"}
	case *mp4.AudioSampleEntryBox:
		sinf, wantType, wantFormat = se.Sinf, []string{"enca"}, []string{"mp4a"}
	}
	if !contains(wantType, entry.Type()) || (kind == manifest.Video) != (entry.Type() == "encv") {
		t.Fatalf("%s: sample entry %s", path, entry.Type())
	}
	if sinf == nil || sinf.Frma == nil || !contains(wantFormat, sinf.Frma.DataFormat) {
		t.Fatalf("%s: sinf/frma missing or wrong: %+v", path, sinf)
	}
	if sinf.Schm == nil || sinf.Schm.SchemeType != scheme || sinf.Schi == nil || sinf.Schi.Tenc == nil {
		t.Fatalf("%s: schm/schi/tenc missing or wrong", path)
	}
	tenc := sinf.Schi.Tenc
	if !bytes.Equal(tenc.DefaultKID, kid) || tenc.DefaultIsProtected != 1 || tenc.DefaultPerSampleIVSize != wantIVSize {
		t.Fatalf("%s: tenc KID %x protected %d IV size %d", path, []byte(tenc.DefaultKID), tenc.DefaultIsProtected, tenc.DefaultPerSampleIVSize)
	}
	if scheme == "cbcs" {
		crypt, skip := byte(1), byte(9)
		if kind == manifest.Audio {
			crypt, skip = 0, 0
		}
		if tenc.Version != 1 || len(tenc.DefaultConstantIV) != 16 || tenc.DefaultCryptByteBlock != crypt || tenc.DefaultSkipByteBlock != skip {
			t.Fatalf("%s: cbcs tenc version %d, constant IV %x, pattern %d:%d, want version 1, 16 bytes, %d:%d",
				path, tenc.Version, tenc.DefaultConstantIV, tenc.DefaultCryptByteBlock, tenc.DefaultSkipByteBlock, crypt, skip)
		}
	}
	return tenc
}

// cbcsDecrypt is ISO/IEC 23001-7 §10.4's cbcs decryption written out without mp4ff: in each
// protected range (the whole sample when there are no subsamples), AES-CBC from the constant IV
// over crypt_byte_block blocks, then skip_byte_block blocks left as they are, repeated; a
// trailing partial block stays clear; a 0:0 pattern means every whole block. It returns a copy.
func cbcsDecrypt(t *testing.T, enc, key []byte, tenc *mp4.TencBox, subs []mp4.SubSamplePattern) []byte {
	t.Helper()
	out := append([]byte(nil), enc...)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) == 0 {
		subs = []mp4.SubSamplePattern{{BytesOfProtectedData: uint32(len(out))}}
	}
	crypt, skip := int(tenc.DefaultCryptByteBlock)*16, int(tenc.DefaultSkipByteBlock)*16
	pos := 0
	for _, ss := range subs {
		pos += int(ss.BytesOfClearData)
		end := pos + int(ss.BytesOfProtectedData)
		if end > len(out) {
			t.Fatalf("subsamples run past the sample's %d bytes", len(out))
		}
		r := out[pos:end]
		cbc := cipher.NewCBCDecrypter(block, tenc.DefaultConstantIV) // restarts at each subsample
		if crypt == 0 {
			whole := len(r) &^ 15
			cbc.CryptBlocks(r[:whole], r[:whole])
		} else {
			for off := 0; off+crypt <= len(r); off += crypt + skip {
				cbc.CryptBlocks(r[off:off+crypt], r[off:off+crypt])
			}
		}
		pos = end
	}
	return out
}

// ivSize is the per-sample IV size e asks for: 8 bytes unless a 16-byte IV is given; none for
// cbcs (a constant IV in tenc).
func ivSize(e *Encryption) byte {
	if e.Scheme == "cbcs" {
		return 0
	}
	if len(e.IV) == 16 {
		return 16
	}
	return 8
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// compareProtected checks one encrypted sample against its clear twin with the senc's
// subsample map: clear ranges equal, every protected range of 16 bytes or more different (a
// shorter one could match by chance, 2^-128 for 16 bytes). It returns the protected bytes.
func compareProtected(t *testing.T, uri string, k int, clear, enc []byte, senc *mp4.SencBox, n int) int {
	t.Helper()
	if len(clear) != len(enc) {
		t.Fatalf("%s sample %d: %d bytes encrypted, %d clear", uri, k, len(enc), len(clear))
	}
	var subs []mp4.SubSamplePattern
	if n < len(senc.SubSamples) {
		subs = senc.SubSamples[n]
	}
	if len(subs) == 0 { // whole-sample encryption (audio)
		subs = []mp4.SubSamplePattern{{BytesOfClearData: 0, BytesOfProtectedData: uint32(len(clear))}}
	}
	pos, protected := 0, 0
	for _, ss := range subs {
		c, p := int(ss.BytesOfClearData), int(ss.BytesOfProtectedData)
		if pos+c+p > len(clear) {
			t.Fatalf("%s sample %d: subsamples run past the sample's %d bytes", uri, k, len(clear))
		}
		if !bytes.Equal(clear[pos:pos+c], enc[pos:pos+c]) {
			t.Fatalf("%s sample %d: a clear range differs from the clear sample", uri, k)
		}
		pos += c
		if p >= 16 && bytes.Equal(clear[pos:pos+p], enc[pos:pos+p]) {
			t.Fatalf("%s sample %d: a protected range of %d bytes is not encrypted", uri, k, p)
		}
		pos += p
		protected += p
	}
	if pos != len(clear) {
		t.Fatalf("%s sample %d: subsamples cover %d of %d bytes", uri, k, pos, len(clear))
	}
	return protected
}

// TestEncryptSignalling: the MPD parses back with dash-mpd and every AdaptationSet carries the
// mp4protection descriptor (value cenc or cbcs) with the default KID and the ClearKey one; the
// clear MPD has none. Without a key URI the HLS playlists carry no key tag, and the media
// playlists are the clear ones byte for byte.
func TestEncryptSignalling(t *testing.T) {
	t.Run("cenc", func(t *testing.T) { testEncryptSignalling(t, testEncryption()) })
	t.Run("cbcs", func(t *testing.T) { testEncryptSignalling(t, testCbcs()) })
}

// TestEncryptHLSSignalling: with a key URI, the playlists Package writes parse back with
// hls-m3u8; the master has two EXT-X-SESSION-KEYs and every media and I-frame playlist two
// EXT-X-KEYs before its EXT-X-MAP, METHOD=SAMPLE-AES for cbcs and SAMPLE-AES-CTR for cenc: the
// URI with KEYFORMAT="identity", then ClearKey; the clear twin's playlists have no key tag.
func TestEncryptHLSSignalling(t *testing.T) {
	const uri = "https://keys.example/reel/0123456789abcdef0123456789abcdef"
	for _, e := range []*Encryption{testCbcs(), testEncryption()} {
		t.Run(e.Scheme, func(t *testing.T) {
			e.KeyURI = uri
			method := map[string]string{"cbcs": "SAMPLE-AES", "cenc": "SAMPLE-AES-CTR"}[e.Scheme]
			want := m3u8.Key{Method: method, URI: uri, Keyformat: "identity"}
			clearDir, clearP, encDir, encP := packagedTwiceWith(t, ladder, e)
			if encP.Protection.KeyURI != uri {
				t.Fatalf("Protection.KeyURI %q", encP.Protection.KeyURI)
			}
			decode := func(path string) m3u8.Playlist {
				t.Helper()
				raw, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				pl, _, err := m3u8.DecodeFrom(bytes.NewReader(raw), true)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				if k, m := bytes.Index(raw, []byte("#EXT-X-KEY:")), bytes.Index(raw, []byte("#EXT-X-MAP:")); k > m {
					t.Errorf("%s: EXT-X-KEY after EXT-X-MAP", path)
				}
				return pl
			}
			master := decode(filepath.Join(encDir, manifest.MasterPlaylist)).(*m3u8.MasterPlaylist)
			if len(master.SessionKeys) != 2 || *master.SessionKeys[0] != want || master.SessionKeys[1].Keyformat != "org.w3.clearkey" {
				t.Errorf("master: session keys %+v, want %+v", master.SessionKeys, want)
			}
			if n := len(decode(filepath.Join(clearDir, manifest.MasterPlaylist)).(*m3u8.MasterPlaylist).SessionKeys); n != 0 {
				t.Errorf("clear master: %d session keys", n)
			}
			playlists := 0
			for i, tr := range encP.Tracks() {
				names := []string{manifest.MediaPlaylist}
				if tr.Kind == manifest.Video {
					names = append(names, manifest.IFramePlaylist)
				}
				for _, name := range names {
					pl := decode(filepath.Join(encDir, tr.ID, name)).(*m3u8.MediaPlaylist)
					if len(pl.Keys) != 2 || pl.Keys[0] != want || pl.Keys[1].Keyformat != "org.w3.clearkey" || pl.Count() == 0 || len(pl.Segments[0].Keys) != 2 {
						t.Errorf("%s/%s: keys %+v, want one %+v before the first segment", tr.ID, name, pl.Keys, want)
					}
					clearPl := decode(filepath.Join(clearDir, clearP.Tracks()[i].ID, name)).(*m3u8.MediaPlaylist)
					if len(clearPl.Keys) != 0 {
						t.Errorf("clear %s/%s: keys %+v", tr.ID, name, clearPl.Keys)
					}
					playlists++
				}
			}
			if playlists != 7 {
				t.Errorf("%d media playlists checked, want 7 (4 media, 3 I-frame)", playlists)
			}
		})
	}
}

func testEncryptSignalling(t *testing.T, e *Encryption) {
	clearDir, _, encDir, _ := packagedTwiceWith(t, ladder, e)
	m, err := mpd.ReadFromFile(filepath.Join(encDir, manifest.DASHManifest))
	if err != nil {
		t.Fatalf("reading the MPD back: %v", err)
	}
	sets := m.Periods[0].AdaptationSets
	if len(sets) < 2 {
		t.Fatalf("%d AdaptationSets", len(sets))
	}
	for _, as := range sets {
		var generic, clearKey bool
		for _, cp := range as.ContentProtections {
			switch cp.SchemeIdUri {
			case "urn:mpeg:dash:mp4protection:2011":
				generic = cp.Value == e.Scheme && cp.DefaultKID == "01234567-89ab-cdef-0123-456789abcdef"
			case "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e":
				clearKey = true
			}
		}
		if !generic || !clearKey {
			t.Errorf("AdaptationSet %s: mp4protection with the KID %v, ClearKey %v", as.ContentType, generic, clearKey)
		}
	}
	clearMPD, err := os.ReadFile(filepath.Join(clearDir, manifest.DASHManifest))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(clearMPD, []byte("ContentProtection")) {
		t.Error("the clear MPD signals protection")
	}
	// No key URI: HLS signals ClearKey alone. The media playlists are the clear ones with the
	// ClearKey EXT-X-KEY (and EXT-X-VERSION 5 for KEYFORMAT); the master and I-frame playlists
	// differ also where the larger moofs (senc) change I-frame byte ranges and bandwidths.
	method := map[string]string{"cbcs": "SAMPLE-AES", "cenc": "SAMPLE-AES-CTR"}[e.Scheme]
	clearKeyLine := "METHOD=" + method + `,URI="data:text/plain;base64,` + base64.StdEncoding.EncodeToString(e.KeyID) +
		`",KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"`
	playlists := 0
	err = filepath.WalkDir(clearDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".m3u8" {
			return err
		}
		playlists++
		rel, _ := filepath.Rel(clearDir, path)
		c, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		enc, err := os.ReadFile(filepath.Join(encDir, rel))
		if err != nil {
			return err
		}
		tag := "#EXT-X-KEY:"
		if filepath.Base(rel) == manifest.MasterPlaylist {
			tag = "#EXT-X-SESSION-KEY:"
		}
		if n := bytes.Count(enc, []byte("KEY:")); n != 1 || !bytes.Contains(enc, []byte(tag+clearKeyLine+"\n")) {
			t.Errorf("%s: %d key tags, want one: %s%s", rel, n, tag, clearKeyLine)
		}
		if filepath.Base(rel) == manifest.MediaPlaylist {
			if got := strings.Replace(string(enc), tag+clearKeyLine+"\n", "", 1); got != string(c) {
				t.Errorf("%s: the encrypted presentation's media playlist is not the clear one and the ClearKey tag:\n%s\nclear:\n%s", rel, enc, c)
			}
		}
		return nil
	})
	if playlists != 8 {
		t.Errorf("%d playlists compared, want 8", playlists)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestEncryptKeyNotPublished: no file of the presentation holds the key, in bytes or in hex.
func TestEncryptKeyNotPublished(t *testing.T) {
	_, _, encDir, _ := packagedTwice(t, ladder)
	testkit.CheckNoSecretInDir(t, encDir, 10, testKey)
}

// TestEncryptBadInput: bad key material and an unknown scheme are refused
// before anything is written, with an error naming the problem.
func TestEncryptBadInput(t *testing.T) {
	short := testKey[:15]
	tests := []struct {
		name   string
		e      Encryption
		single bool
		want   string
	}{
		{"short key", Encryption{Scheme: "cenc", KeyID: testKID, Key: short}, false, "key is 15 bytes"},
		{"short key id", Encryption{Scheme: "cenc", KeyID: short, Key: testKey}, false, "key id is 15 bytes"},
		{"bad iv", Encryption{Scheme: "cenc", KeyID: testKID, Key: testKey, IV: short}, false, "iv is 15 bytes"},
		{"unknown scheme", Encryption{Scheme: "cbc1", KeyID: testKID, Key: testKey}, false, `scheme "cbc1"`},
		{"quote in key uri", Encryption{Scheme: "cbcs", KeyID: testKID, Key: testKey, KeyURI: `https://k/"x"`}, false, "key URI"},
		{"cbcs 8-byte iv", Encryption{Scheme: "cbcs", KeyID: testKID, Key: testKey, IV: testKey[:8]}, false, "want 16 for cbcs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			out := filepath.Join(parent, "out")
			e := tc.e
			_, err := Package(context.Background(), Options{Inputs: ladder[2:], Output: out, SingleFile: tc.single, Encryption: &e})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
			entries, rerr := os.ReadDir(parent)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

// TestEncryptFFmpegDecrypts checks the output with an independent implementation: ffmpeg, given
// the key, decodes every frame of the first segment of each track to the same pictures and
// sounds as the clear twin; with a wrong key or none (ffprobe still reports the original
// codec, from frma) the decoded frames differ.
func TestEncryptFFmpegDecrypts(t *testing.T) {
	ffmpeg := requireTool(t, "ffmpeg")
	t.Run("cenc", func(t *testing.T) { testFFmpegDecrypts(t, ffmpeg, testEncryption()) })
	t.Run("cbcs", func(t *testing.T) { testFFmpegDecrypts(t, ffmpeg, testCbcs()) })
}

func testFFmpegDecrypts(t *testing.T, ffmpeg string, e *Encryption) {
	clearDir, clearP, encDir, _ := packagedTwiceWith(t, ladder, e)
	tmp := t.TempDir()
	for _, tr := range []*manifest.Track{clearP.Video[0], clearP.Audio[0]} {
		join := func(dir, name string) string {
			var b []byte
			for _, f := range []string{manifest.InitSegmentName, tr.Segments[0].URI} {
				d, err := os.ReadFile(filepath.Join(dir, tr.ID, f))
				if err != nil {
					t.Fatal(err)
				}
				b = append(b, d...)
			}
			p := filepath.Join(tmp, name+"_"+tr.ID+".mp4")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}
		clearFile, encFile := join(clearDir, "clear"), join(encDir, "enc")
		want := frameMD5(t, ffmpeg, clearFile)
		got := frameMD5(t, ffmpeg, encFile, "-decryption_key", hex.EncodeToString(testKey))
		if got != want || want == "" {
			t.Errorf("%s: ffmpeg's decryption of the first segment differs from the clear one", tr.ID)
		}
		wrong := frameMD5(t, ffmpeg, encFile, "-decryption_key", strings.Repeat("ab", 16))
		if wrong == want {
			t.Errorf("%s: a wrong key decodes the same frames", tr.ID)
		}
		if none := frameMD5(t, ffmpeg, encFile); none == want {
			t.Errorf("%s: without the key ffmpeg decodes the same frames", tr.ID)
		}
	}
}

// frameMD5 is ffmpeg's per-frame MD5 of the decoded media (lines without the header comments);
// decoding errors do not fail it, so that a wrong key gives different output, not a fatal error.
func frameMD5(t *testing.T, ffmpeg, file string, pre ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append(append([]string{"-v", "quiet"}, pre...), "-i", file, "-f", "framemd5", "-")
	out, err := exec.CommandContext(ctx, ffmpeg, args...).Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("ffmpeg: %v", err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}
