package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/reelvideo/reel/packager"
)

// subFlags collects the repeatable --sub FILE[:lang=fr][:name=Français][:default][:forced][:sdh].
type subFlags []string

func (s *subFlags) String() string     { return strings.Join(*s, " ") }
func (s *subFlags) Set(v string) error { *s = append(*s, v); return nil }

// parseSubs turns --sub values into packager.Subtitles; a malformed value is a usageError.
func parseSubs(vals []string) ([]packager.Subtitle, error) {
	var out []packager.Subtitle
	defaults := 0
	for _, v := range vals {
		s, err := parseSub(v)
		if err != nil {
			return nil, err
		}
		if s.Default {
			if defaults++; defaults > 1 {
				return nil, usageError("--sub: only one subtitle track can be :default")
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// parseSub reads one --sub value. The file comes first, and options follow, each after a
// colon; the options start at the first part that is one (so a file name may hold a colon),
// and a name may hold colons too ("name=Star Wars: Commentary"): a part that is no option
// after name= belongs to the name.
func parseSub(v string) (packager.Subtitle, error) {
	parts := strings.Split(v, ":")
	first := len(parts)
	for i := 1; i < len(parts); i++ {
		if isSubOption(parts[i]) {
			first = i
			break
		}
	}
	if first == len(parts) && len(parts) > 1 {
		// film.vtt:bogus: a misspelt option rather than a file name with a colon, unless such
		// a file exists.
		last := parts[len(parts)-1]
		if _, err := os.Stat(v); err != nil && !strings.ContainsAny(last, "./\\") {
			return packager.Subtitle{}, usageError(fmt.Sprintf("--sub %q: unknown option %q (want lang=, name=, default, forced, sdh)", v, last))
		}
	}
	s := packager.Subtitle{File: strings.Join(parts[:first], ":")}
	if s.File == "" {
		return s, usageError(fmt.Sprintf("--sub %q: no file (want FILE[:lang=fr][:name=…][:default][:forced][:sdh])", v))
	}
	inName := false
	for _, p := range parts[first:] {
		key, val, hasVal := strings.Cut(p, "=")
		switch {
		case key == "lang" || key == "language":
			if val == "" {
				return s, usageError(fmt.Sprintf("--sub %q: lang= needs a language, e.g. lang=fr", v))
			}
			s.Language, inName = val, false
		case key == "name":
			if val == "" {
				return s, usageError(fmt.Sprintf("--sub %q: name= needs a name", v))
			}
			s.Name, inName = val, true
		case !hasVal && key == "default":
			s.Default, inName = true, false
		case !hasVal && key == "forced":
			s.Forced, inName = true, false
		case !hasVal && key == "sdh":
			s.SDH, inName = true, false
		case inName:
			s.Name += ":" + p
		default:
			return s, usageError(fmt.Sprintf("--sub %q: unknown option %q (want lang=, name=, default, forced, sdh)", v, p))
		}
	}
	return s, nil
}

// isSubOption reports whether p is one of --sub's options.
func isSubOption(p string) bool {
	key, _, hasVal := strings.Cut(p, "=")
	switch key {
	case "lang", "language", "name":
		return hasVal
	case "default", "forced", "sdh":
		return !hasVal
	}
	return false
}
