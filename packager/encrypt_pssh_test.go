package packager

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/reelvideo/reel/manifest"
)

// TestEncryptCommonPssh: with one key (no CPIX), every track's protected init segment carries,
// in moov, the W3C common pssh (system 1077efec-c0b2-4d02-ace3-3c1e52e2fb4b, version 1) naming
// the key ID and no data — what makes the browser fire "encrypted" for players that wait for it
// (hls.js) — and no other pssh. For cenc and cbcs alike. (With CPIX, TestEncryptCPIX checks the
// document's own common pssh is not doubled.)
func TestEncryptCommonPssh(t *testing.T) {
	for _, e := range []*Encryption{testEncryption(), testCbcs()} {
		t.Run(e.Scheme, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "enc")
			p, err := Package(context.Background(), Options{Inputs: ladder[:1], Output: dir, Encryption: e})
			if err != nil {
				t.Fatalf("Package: %v", err)
			}
			if len(p.Tracks()) == 0 {
				t.Fatal("no tracks")
			}
			for _, tr := range p.Tracks() {
				if tr.Kind != manifest.Video && tr.Kind != manifest.Audio {
					continue
				}
				init := decodeMP4(t, filepath.Join(dir, tr.ID, manifest.InitSegmentName)).Init
				if init == nil || len(init.Moov.Psshs) != 1 {
					t.Fatalf("%s: moov has %d pssh boxes, want 1 (the common one)", tr.ID, len(init.Moov.Psshs))
				}
				ps := init.Moov.Psshs[0]
				if !bytes.Equal(ps.SystemID, commonSystemID) || ps.Version != 1 || len(ps.Data) != 0 {
					t.Errorf("%s: pssh system %s version %d, %d data bytes; want the common system, version 1, no data", tr.ID, ps.SystemID, ps.Version, len(ps.Data))
				}
				if len(ps.KIDs) != 1 || !bytes.Equal(ps.KIDs[0], testKID) {
					t.Errorf("%s: pssh KIDs %v, want [%x]", tr.ID, ps.KIDs, testKID)
				}
			}
		})
	}
}
