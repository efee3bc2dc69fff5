package packager

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// SchemeAES128 is HLS whole-segment encryption (RFC 8216 §4.3.2.4, §5.2): every media segment
// file is AES-128-CBC with PKCS7 padding, the init segment stays clear. It is for HLS players
// without EME (they decrypt in script or natively); DASH has no way to signal it, so no MPD is
// written.
const SchemeAES128 = "aes-128"

// checkAES128 validates an aes-128 Encryption: a key, a key URI (a player has nowhere else to
// learn the key from), no key ID (nothing carries one) and an optional 16-byte IV.
func (e *Encryption) checkAES128() error {
	switch {
	case len(e.KeyID) != 0:
		return errors.New("key id does not apply to aes-128 (nothing in the output carries it)")
	case len(e.Key) != 16:
		return fmt.Errorf("key is %d bytes, want 16", len(e.Key))
	case len(e.IV) != 0 && len(e.IV) != 16:
		return fmt.Errorf("iv is %d bytes, want 16 for aes-128", len(e.IV))
	case e.KeyURI == "":
		return errors.New("aes-128 needs a key URI (EXT-X-KEY is the only place a player learns it)")
	case strings.ContainsAny(e.KeyURI, "\"\r\n"):
		return errors.New("key URI holds a double quote or a line break")
	}
	return nil
}

// segmentCipher encrypts whole media segments for aes-128.
//
// The IV: without an explicit one, each segment's IV is its media sequence number as a 128-bit
// big-endian integer, which is what a player computes when EXT-X-KEY has no IV attribute
// (RFC 8216 §5.2). Within a track no two segments share an IV. Across tracks under the one key
// the n-th segments do, as they do with a fixed IV (--iv, IV=0x… in EXT-X-KEY, the one value a
// single EXT-X-KEY can name for every segment). Reusing a CBC IV is not the catastrophe a reused
// CTR counter is: it shows only whether two segments begin with the same 16-byte blocks, and
// segments begin with styp and a moof header that are public structure. So the default is the
// RFC's, with unique IVs per track, and --iv exists for output that must match another
// packager's or be checked by hand.
type segmentCipher struct {
	block cipher.Block
	iv    []byte // fixed IV; nil: the media sequence number
}

func newSegmentCipher(e *Encryption) (*segmentCipher, error) {
	block, err := aes.NewCipher(e.Key)
	if err != nil {
		return nil, fmt.Errorf("aes-128 key: %w", err)
	}
	return &segmentCipher{block: block, iv: append([]byte(nil), e.IV...)}, nil
}

// segmentIV is the IV of the segment with media sequence number seq.
func (c *segmentCipher) segmentIV(seq uint64) []byte {
	if len(c.iv) == 16 {
		return c.iv
	}
	iv := make([]byte, 16)
	binary.BigEndian.PutUint64(iv[8:], seq)
	return iv
}

// encrypt returns plain padded with PKCS7 (RFC 5652 §6.3; always 1 to 16 bytes, so the
// size is the next multiple of 16 above len(plain)) and encrypted in CBC mode, in place when
// plain has the capacity.
func (c *segmentCipher) encrypt(plain []byte, seq uint64) []byte {
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	out := append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(c.block, c.segmentIV(seq)).CryptBlocks(out, out)
	return out
}

// encryptedSize is the size of a segment of n clear bytes once encrypted.
func encryptedSize(n int64) int64 { return n + aes.BlockSize - n%aes.BlockSize }
