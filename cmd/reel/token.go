package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/reelvideo/reel/edge/token"
)

const tokenUsage = `Usage:
  reel token --key-file FILE|--key HEX [--key-id ID] --acl PATTERN [--ttl D] [flags]
  reel token --key-file FILE|--key HEX [--key-id ID] --url URL [--form path|query] [flags]

Mints a signed-URL token for an edge configured with tokens: (see README, "Signed URLs"):
HMAC-SHA256 under the key named by --key-id, valid from --start (default now) for --ttl, for
the paths of --acl (exact, or a prefix ending in '*'; repeat it for several), optionally for
one client address. One token covers a whole presentation: give its folder as the ACL.

Prints the token; with --url, the URL carrying it instead: in the path form
(/tok/<token>/live/demo/master.m3u8, which relative URIs in playlists and MPDs keep, so players
need no change) or as a query parameter. Without --acl, --url's folder is the ACL.

Examples:
  reel token --key-id k1 --key-file k1.hex --acl '/live/demo/*' --ttl 1h
  reel token --key-id k1 --key-file k1.hex --url http://127.0.0.1:8081/vod/master.m3u8
  reel token --key-id k2 --key 00112233445566778899aabbccddeeff --acl '/vod/*' --ip 203.0.113.7 \
      --start 2026-12-24T18:00:00Z --ttl 3h --url http://edge.example/vod/master.m3u8 --form query
`

// minTokenKey is the shortest key reel token takes, as the edge (tokens.keys) does.
const minTokenKey = 16

func runToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	keyID := fs.String("key-id", "", "the key's id in the edge's tokens.keys (none: the edge's default_key_id)")
	keyFile := fs.String("key-file", "", "file holding the key in hex")
	keyHex := fs.String("key", "", "the key in hex (visible to other users in the process list: prefer --key-file)")
	var acl stringsFlag
	fs.Var(&acl, "acl", "a path the token is valid for, exact or a prefix ending in '*' (repeatable)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	start := fs.String("start", "", "when the token becomes valid, RFC 3339 or Unix seconds (default now; only then is st written)")
	ip := fs.String("ip", "", "the one client address the token is valid for")
	target := fs.String("url", "", "print this URL carrying the token instead of the token")
	form := fs.String("form", "path", "with --url: path (/tok/<token>/…) or query (?token=…)")
	prefix := fs.String("path-prefix", "/tok", "the path form's prefix (the edge's tokens.path_prefix)")
	param := fs.String("param", "token", "the query form's parameter (the edge's tokens.query_param)")
	fs.Usage = usageFunc(fs, tokenUsage)
	pos, code, ok := parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "reel token: "+format+" (run 'reel token -h')\n", a...)
		return exitUsage
	}
	if len(pos) > 0 {
		return usage("unexpected argument %q", pos[0])
	}
	if (*keyFile == "") == (*keyHex == "") {
		return usage("give the key as --key-file FILE or --key HEX")
	}
	if *ttl <= 0 {
		return usage("--ttl must be positive")
	}
	if *form != "path" && *form != "query" {
		return usage("--form %q must be path or query", *form)
	}
	var u *url.URL
	if *target != "" {
		var err error
		if u, err = url.Parse(*target); err != nil || u.Scheme == "" || u.Host == "" || !strings.HasPrefix(u.Path, "/") {
			return usage("--url %q is not an absolute URL with a path", *target)
		}
		if len(acl) == 0 {
			acl = stringsFlag{path.Dir(u.Path) + "/*"}
			if acl[0] == "//*" {
				acl[0] = "/*"
			}
		}
	}
	if len(acl) == 0 {
		return usage("give the paths as --acl PATTERN (or a --url)")
	}
	c := token.Claims{ACL: acl}
	now := time.Now()
	if *start != "" {
		t, err := parseStart(*start)
		if err != nil {
			return usage("--start %q is neither RFC 3339 nor Unix seconds", *start)
		}
		c.Start, now = t, t
	}
	c.Expires = now.Add(*ttl)
	if *ip != "" {
		a, err := netip.ParseAddr(*ip)
		if err != nil {
			return usage("--ip %q is not an IP address", *ip)
		}
		c.IP = a
	}
	if strings.Contains(*keyID, "~") {
		return usage("--key-id %q must not contain '~'", *keyID)
	}
	if err := c.Check(); err != nil {
		return usage("%v", err)
	}
	key, err := readTokenKey(*keyFile, *keyHex)
	if err != nil {
		fmt.Fprintf(stderr, "reel token: %s\n", oneLine(err))
		return exitFailure
	}
	tok := token.Mint(c, *keyID, key)
	if u == nil {
		fmt.Fprintln(stdout, tok)
		return exitOK
	}
	if *form == "query" {
		q := *param + "=" + url.QueryEscape(tok)
		if u.RawQuery != "" {
			q = u.RawQuery + "&" + q
		}
		u.RawQuery = q
		fmt.Fprintln(stdout, u.String())
		return exitOK
	}
	// The token is one path segment, its '/' percent-encoded: the edge reads it back from
	// the escaped path.
	escaped := "/" + strings.Trim(*prefix, "/") + "/" + url.PathEscape(tok) + u.EscapedPath()
	u.Path, _ = url.PathUnescape(escaped)
	u.RawPath = escaped
	fmt.Fprintln(stdout, u.String())
	return exitOK
}

// readTokenKey is the key from a file or a flag, in hex, at least minTokenKey bytes. Its
// errors never quote the key.
func readTokenKey(file, hexKey string) ([]byte, error) {
	where := "--key"
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		hexKey, where = string(data), file
	}
	key, err := hex.DecodeString(strings.TrimSpace(hexKey))
	if err != nil {
		return nil, fmt.Errorf("%s: the key is not hex", where)
	}
	if len(key) < minTokenKey {
		return nil, fmt.Errorf("%s: the key must be at least %d bytes (%d hex digits)", where, minTokenKey, 2*minTokenKey)
	}
	return key, nil
}

// parseStart reads a time as RFC 3339 or Unix seconds.
func parseStart(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errors.New("not a time")
	}
	return t, nil
}
