// Package token mints and verifies signed-URL tokens, the edge's access check for protected
// video (edge/tokencheck.go): one token covers a whole presentation — master, playlists, init
// segments, segments, parts — through an ACL path prefix, the way CDN tokens for video work.
//
// The format follows Akamai's token authentication 2.0, so that the tooling people know
// carries over:
//
//	ip=203.0.113.7~st=1700000000~exp=1700003600~acl=/live/demo/*~id=k1~hmac=<64 hex digits>
//
// Fields are name=value pairs separated by '~', in any order except hmac, which comes last:
// the hex HMAC-SHA256, under the key named by id, of everything before "~hmac=". exp (the
// first second the token is no longer valid, Unix time) and either acl or url are required;
// st (the first second it is valid), ip (the one client address it is valid for), id (the
// key; without it, the key the verifier was given for "") and data (opaque, signed) are
// optional. acl is one or more path patterns separated by '!', each exact or ending in '*'
// (a prefix); url is one exact path. Unlike Akamai's url form, the url is carried in the
// token itself rather than only signed.
//
// Everything here is pure: no clock, no I/O; the caller gives the time and the keys.
package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Claims are what a token says: who may fetch what, when.
type Claims struct {
	// Start is the first second the token is valid (zero: valid at once).
	Start time.Time
	// Expires is the first second the token is no longer valid (required).
	Expires time.Time
	// ACL is the paths the token is valid for: each exact, or a prefix when it ends in '*'.
	ACL []string
	// URL is the one path the token is valid for, instead of ACL.
	URL string
	// IP binds the token to one client address (invalid: any address).
	IP netip.Addr
	// KeyID is the id of the key that signed it, as Verify read it ("" when none was
	// given); Mint takes the id as an argument.
	KeyID string
	// Data is signed but not checked: a viewer or session id for logs.
	Data string
}

// The reasons a token is refused: Verify's errors are these, wrapped with detail.
var (
	ErrMalformed  = errors.New("malformed token")
	ErrUnknownKey = errors.New("unknown token key id")
	ErrSignature  = errors.New("bad token signature")
	ErrExpired    = errors.New("token expired")
	ErrNotYet     = errors.New("token not yet valid")
	ErrPath       = errors.New("token not valid for this path")
	ErrIP         = errors.New("token not valid for this address")
)

const hmacField = "~hmac="

// Check reports why c can't be minted into a token that verifies: a field holding the
// separators, no expiry, no path, or a '*' that isn't a pattern's last byte.
func (c Claims) Check() error {
	if c.Expires.IsZero() {
		return errors.New("no expiry")
	}
	if !c.Start.IsZero() && !c.Start.Before(c.Expires) {
		return errors.New("start is not before expiry")
	}
	if (len(c.ACL) == 0) == (c.URL == "") {
		return errors.New("give either an ACL or a URL path")
	}
	for _, a := range c.ACL {
		if a == "" || strings.ContainsAny(a, "~!") || strings.Contains(a[:len(a)-1], "*") {
			return fmt.Errorf("ACL entry %q must be non-empty, without '~' or '!', with '*' only at its end", a)
		}
	}
	for name, v := range map[string]string{"URL": c.URL, "key id": c.KeyID, "data": c.Data} {
		if strings.Contains(v, "~") {
			return fmt.Errorf("%s %q must not contain '~'", name, v)
		}
	}
	return nil
}

// Mint returns the token for c signed with key under keyID ("" leaves the id out: verifiers
// then use their default key). c should pass Check; the token of claims that don't won't verify.
func Mint(c Claims, keyID string, key []byte) string {
	var b strings.Builder
	if c.IP.IsValid() {
		b.WriteString("~ip=" + c.IP.Unmap().String())
	}
	if !c.Start.IsZero() {
		b.WriteString("~st=" + strconv.FormatInt(c.Start.Unix(), 10))
	}
	b.WriteString("~exp=" + strconv.FormatInt(c.Expires.Unix(), 10))
	if len(c.ACL) > 0 {
		b.WriteString("~acl=" + strings.Join(c.ACL, "!"))
	}
	if c.URL != "" {
		b.WriteString("~url=" + c.URL)
	}
	if keyID != "" {
		b.WriteString("~id=" + keyID)
	}
	if c.Data != "" {
		b.WriteString("~data=" + c.Data)
	}
	signed := b.String()[1:]
	return signed + hmacField + hex.EncodeToString(sign(signed, key))
}

func sign(signed string, key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

// Verify checks tok for a request of path (decoded and clean, as the origin will serve it)
// from clientIP at now, with keys by id (keys[""] is the key of tokens without an id). It
// returns the token's claims, or an error wrapping the first reason it fails, checked in this
// order: ErrMalformed, ErrUnknownKey, ErrSignature (nothing of an unsigned token is trusted
// further), ErrExpired, ErrNotYet, ErrPath, ErrIP.
func Verify(tok, path string, clientIP netip.Addr, now time.Time, keys map[string][]byte) (Claims, error) {
	var c Claims
	i := strings.LastIndex(tok, hmacField)
	if i <= 0 {
		return c, fmt.Errorf("%w: no %s field last", ErrMalformed, hmacField[1:])
	}
	signed, mac := tok[:i], tok[i+len(hmacField):]
	if len(mac) != 2*sha256.Size {
		return c, fmt.Errorf("%w: hmac is not %d hex digits", ErrMalformed, 2*sha256.Size)
	}
	got := make([]byte, sha256.Size)
	if _, err := hex.Decode(got, []byte(mac)); err != nil {
		return c, fmt.Errorf("%w: hmac is not hex", ErrMalformed)
	}
	var seen [8]bool
	var hasExp, hasACL bool
	for rest := signed; rest != ""; {
		var f string
		f, rest, _ = strings.Cut(rest, "~")
		name, v, ok := strings.Cut(f, "=")
		if !ok {
			return c, fmt.Errorf("%w: field %.20q is not name=value", ErrMalformed, f)
		}
		n := fieldIndex(name)
		if n < 0 {
			return c, fmt.Errorf("%w: unknown field %.20q", ErrMalformed, name)
		}
		if seen[n] {
			return c, fmt.Errorf("%w: field %s given twice", ErrMalformed, name)
		}
		seen[n] = true
		var err error
		switch name {
		case "ip":
			if c.IP, err = netip.ParseAddr(v); err != nil {
				return c, fmt.Errorf("%w: ip %.40q", ErrMalformed, v)
			}
			c.IP = c.IP.Unmap()
		case "st":
			if c.Start, err = unixTime(v); err != nil {
				return c, fmt.Errorf("%w: st %.20q", ErrMalformed, v)
			}
		case "exp":
			if c.Expires, err = unixTime(v); err != nil {
				return c, fmt.Errorf("%w: exp %.20q", ErrMalformed, v)
			}
			hasExp = true
		case "acl":
			c.ACL = strings.Split(v, "!")
			for _, a := range c.ACL {
				if a == "" || strings.Contains(a[:len(a)-1], "*") {
					return c, fmt.Errorf("%w: acl entry %.40q", ErrMalformed, a)
				}
			}
			hasACL = true
		case "url":
			if v == "" {
				return c, fmt.Errorf("%w: empty url", ErrMalformed)
			}
			c.URL = v
		case "id":
			c.KeyID = v
		case "data":
			c.Data = v
		}
	}
	if !hasExp {
		return c, fmt.Errorf("%w: no exp", ErrMalformed)
	}
	if hasACL == (c.URL != "") {
		return c, fmt.Errorf("%w: needs one of acl and url", ErrMalformed)
	}
	key, ok := keys[c.KeyID]
	if !ok {
		return c, fmt.Errorf("%w %q", ErrUnknownKey, c.KeyID)
	}
	if !hmac.Equal(got, sign(signed, key)) {
		return c, ErrSignature
	}
	if !now.Before(c.Expires) {
		return c, ErrExpired
	}
	if !c.Start.IsZero() && now.Before(c.Start) {
		return c, ErrNotYet
	}
	if !c.allows(path) {
		return c, ErrPath
	}
	if c.IP.IsValid() && c.IP != clientIP.Unmap() {
		return c, ErrIP
	}
	return c, nil
}

// fieldIndex numbers the known fields (for Verify's duplicate check), -1 for others.
func fieldIndex(name string) int {
	switch name {
	case "ip":
		return 0
	case "st":
		return 1
	case "exp":
		return 2
	case "acl":
		return 3
	case "url":
		return 4
	case "id":
		return 5
	case "data":
		return 6
	}
	return -1
}

func unixTime(v string) (time.Time, error) {
	// Digits only: ParseInt would take a sign, and "+5" must not sign the same as "5".
	if v == "" || len(v) > 12 || strings.Trim(v, "0123456789") != "" {
		return time.Time{}, errors.New("not a Unix time")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return time.Unix(n, 0), err
}

// allows reports whether path is one the claims cover.
func (c Claims) allows(path string) bool {
	if c.URL != "" {
		return path == c.URL
	}
	for _, a := range c.ACL {
		if p, ok := strings.CutSuffix(a, "*"); ok {
			if strings.HasPrefix(path, p) {
				return true
			}
		} else if path == a {
			return true
		}
	}
	return false
}
