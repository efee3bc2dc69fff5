package edge

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Tokens configures signed URLs (tokencheck.go; the format is edge/token's). With keys given,
// every request's token is taken from the path form, the query parameter or the cookie, and
// removed from the request before the cache key and the origin see it; paths that require a
// token (Require, or a rule's token) are refused with 403 without a valid one.
type Tokens struct {
	// Keys are the HMAC keys by id: several, so that keys can be rotated (mint with the new
	// id, then remove the old one once its tokens have expired). Each is hex, or a key_file
	// holding hex.
	Keys map[string]TokenKey `yaml:"keys"`
	// DefaultKeyID is the key of tokens that carry no id ("": such tokens are refused).
	DefaultKeyID string `yaml:"default_key_id"`
	// QueryParam is the query parameter a token may come in (default "token").
	QueryParam string `yaml:"query_param"`
	// Cookie is the cookie a token may come in (default "reel_token").
	Cookie string `yaml:"cookie"`
	// PathPrefix is the path form's first segment (default "/tok"): /tok/<token>/vod/master.m3u8
	// is /vod/master.m3u8 with a token, and the URIs a playlist or MPD gives relative to it
	// keep the token, so players need no change. The token is percent-encoded as one segment.
	PathPrefix string `yaml:"path_prefix"`
	// Require makes every path need a token unless a rule says token: off.
	Require bool `yaml:"require"`

	// keys are the keys by id as Validate read them (validate).
	keys map[string][]byte
}

// Values of Rule.Token.
const (
	tokenRequired = "required"
	tokenOff      = "off"
)

// Token carriers' defaults (zero values in Tokens).
const (
	defaultTokenParam  = "token"
	defaultTokenCookie = "reel_token"
	defaultTokenPath   = "/tok"
	minTokenKeyBytes   = 16
)

// TokenKey is one HMAC key: hex in the configuration, or a file holding hex.
type TokenKey struct {
	KeyFile string `yaml:"key_file"`
	secret  secret
}

// String and GoString print the settings with the key ids but no key: fmt would print the
// keys (unexported fields included) of a configuration a log or an error shows.
func (t Tokens) String() string {
	ids := make([]string, 0, len(t.Keys))
	for id := range t.Keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return fmt.Sprintf("{keys:%v default_key_id:%q query_param:%q cookie:%q path_prefix:%q require:%v}",
		ids, t.DefaultKeyID, t.QueryParam, t.Cookie, t.PathPrefix, t.Require)
}

func (t Tokens) GoString() string { return t.String() }

func (k TokenKey) String() string {
	if k.KeyFile != "" {
		return "{key_file:" + k.KeyFile + "}"
	}
	return "[secret]"
}

func (k TokenKey) GoString() string { return k.String() }

// secret is key material: it prints as [secret], so that no log or error shows it.
type secret []byte

func (secret) String() string   { return "[secret]" }
func (secret) GoString() string { return "[secret]" }

// UnmarshalYAML takes a key as a hex scalar or as a mapping with key_file.
func (k *TokenKey) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b, err := hex.DecodeString(strings.TrimSpace(n.Value))
		if err != nil {
			// The error would quote the key: say where, not what.
			return fmt.Errorf("line %d: a token key is hex (or key_file: FILE)", n.Line)
		}
		k.secret = b
		return nil
	}
	type plain TokenKey
	return n.Decode((*plain)(k))
}

// withDefaults is t with its zero values replaced by the defaults.
func (t Tokens) withDefaults() Tokens {
	if t.QueryParam == "" {
		t.QueryParam = defaultTokenParam
	}
	if t.Cookie == "" {
		t.Cookie = defaultTokenCookie
	}
	if t.PathPrefix == "" {
		t.PathPrefix = defaultTokenPath
	}
	return t
}

// validate checks the token settings and reads the key files. It returns the keys by id,
// with the default key also under "" (edge/token.Verify's key for tokens without an id), nil
// when tokens are off; Validate keeps them in t.keys.
func (t *Tokens) validate(rules []Rule) (map[string][]byte, error) {
	for i, r := range rules {
		if r.Token != "" && r.Token != tokenRequired && r.Token != tokenOff {
			return nil, fmt.Errorf("rules[%d]: token %q must be %q or %q", i, r.Token, tokenRequired, tokenOff)
		}
		if r.Token == tokenRequired && len(t.Keys) == 0 {
			return nil, fmt.Errorf("rules[%d]: token: required needs tokens.keys", i)
		}
	}
	if len(t.Keys) == 0 {
		if t.Require {
			return nil, errors.New("tokens.require needs tokens.keys")
		}
		return nil, nil
	}
	d := t.withDefaults()
	if !strings.HasPrefix(d.PathPrefix, "/") || strings.Count(d.PathPrefix, "/") != 1 || len(d.PathPrefix) < 2 {
		return nil, fmt.Errorf("tokens.path_prefix %q must be one path segment, like /tok", t.PathPrefix)
	}
	for name, v := range map[string]string{"query_param": d.QueryParam, "cookie": d.Cookie} {
		if strings.ContainsAny(v, "=&;, \t\"") {
			return nil, fmt.Errorf("tokens.%s %q must be a plain name", name, v)
		}
	}
	keys := map[string][]byte{}
	for id, k := range t.Keys {
		if id == "" || strings.ContainsAny(id, "~") {
			return nil, fmt.Errorf("tokens.keys: key id %q must be non-empty, without '~'", id)
		}
		b := k.secret
		switch {
		case k.KeyFile != "" && b != nil:
			return nil, fmt.Errorf("tokens.keys.%s: give the key or key_file, not both", id)
		case k.KeyFile != "":
			data, err := os.ReadFile(k.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("tokens.keys.%s: %w", id, err)
			}
			if b, err = hex.DecodeString(strings.TrimSpace(string(data))); err != nil {
				return nil, fmt.Errorf("tokens.keys.%s: %s does not hold a hex key", id, k.KeyFile)
			}
		}
		if len(b) < minTokenKeyBytes {
			return nil, fmt.Errorf("tokens.keys.%s: the key must be at least %d bytes (%d hex digits)", id, minTokenKeyBytes, 2*minTokenKeyBytes)
		}
		keys[id] = b
	}
	if t.DefaultKeyID != "" {
		k, ok := keys[t.DefaultKeyID]
		if !ok {
			return nil, fmt.Errorf("tokens.default_key_id %q is not among tokens.keys", t.DefaultKeyID)
		}
		keys[""] = k
	}
	return keys, nil
}
