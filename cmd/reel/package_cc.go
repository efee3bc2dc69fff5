package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/reelvideo/reel/manifest"
)

// ccFlags collects the repeatable --cc CHANNEL[:lang=en][:name=English].
type ccFlags []string

func (c *ccFlags) String() string     { return strings.Join(*c, " ") }
func (c *ccFlags) Set(v string) error { *c = append(*c, v); return nil }

// parseCCs turns --cc values into caption labels; a malformed value is a usageError. The
// channel is the HLS INSTREAM-ID, CC1–CC4 or SERVICE1–SERVICE63, in any case.
// Languages are checked by the packager, as --sub's are.
func parseCCs(vals []string) ([]manifest.Caption, error) {
	var out []manifest.Caption
	for _, v := range vals {
		parts := strings.Split(v, ":")
		ch, ok := ccChannel(parts[0])
		if !ok {
			return nil, usageError(fmt.Sprintf("--cc %q: no channel (want CC1–CC4 or SERVICE1–SERVICE63, then :lang=…:name=…)", v))
		}
		c := manifest.Caption{Channel: ch}
		inName := false
		for _, p := range parts[1:] {
			key, val, _ := strings.Cut(p, "=")
			switch {
			case key == "lang" || key == "language":
				if val == "" {
					return nil, usageError(fmt.Sprintf("--cc %q: lang= needs a language, e.g. lang=en", v))
				}
				c.Language, inName = val, false
			case key == "name":
				if val == "" {
					return nil, usageError(fmt.Sprintf("--cc %q: name= needs a name", v))
				}
				c.Name, inName = val, true
			case inName: // "name=English: live" — a name may hold colons
				c.Name += ":" + p
			default:
				return nil, usageError(fmt.Sprintf("--cc %q: unknown option %q (want lang=, name=)", v, p))
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// ccChannel reads CC1–CC4 or SERVICE1–SERVICE63 in any case, as the HLS INSTREAM-ID.
func ccChannel(s string) (string, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	switch s {
	case "CC1", "CC2", "CC3", "CC4":
		return s, true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(s, "SERVICE"))
	if !strings.HasPrefix(s, "SERVICE") || err != nil || n < 1 || n > 63 {
		return "", false
	}
	return "SERVICE" + strconv.Itoa(n), true
}
