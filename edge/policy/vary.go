package policy

import (
	"net/http"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
)

// VaryKey is the secondary cache key (RFC 9111 §4.1) of a request, for a stored response
// whose Vary field lines are vary. Listed fields are taken in sorted order; an absent field
// is keyed differently from an empty one (an absent field only matches absence); values are
// the request's lines, trimmed, in order. Accept-Encoding is normalised with
// NormalizeAcceptEncoding, so the many browser spellings collapse into a few variants — for
// that to be correct the proxy must forward the normalised value to the origin, never the
// client's. Vary: * can match nothing: ok is false. No Vary gives "", true.
func VaryKey(vary []string, req http.Header) (key string, ok bool) {
	var names []string
	seen := map[string]bool{}
	for _, line := range vary {
		for _, f := range strings.Split(line, ",") {
			f = textproto.TrimString(f)
			if f == "*" {
				return "", false
			}
			if f == "" {
				continue
			}
			if f = http.CanonicalHeaderKey(f); !seen[f] {
				seen[f] = true
				names = append(names, f)
			}
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		b.WriteString(name)
		vals := req.Values(name)
		switch {
		case name == "Accept-Encoding":
			b.WriteByte('=')
			b.WriteString(NormalizeAcceptEncoding(vals))
		case len(vals) == 0:
			b.WriteByte('!')
		default:
			// Trim into a copy: Values returns the request's own slice.
			trimmed := make([]string, len(vals))
			for i, v := range vals {
				trimmed[i] = strings.Trim(v, " \t")
			}
			b.WriteByte('=')
			b.WriteString(strconv.Quote(strings.Join(trimmed, ",")))
		}
		b.WriteByte('\n')
	}
	return b.String(), true
}

// NormalizeAcceptEncoding reduces Accept-Encoding lines (RFC 9110 §12.5.3) to one of "br",
// "gzip" or "identity": the acceptable coding of br and gzip with the highest qvalue (ties go
// to br), unless the client ranks identity strictly higher. q=0 means "not acceptable"; "*"
// covers codings not named; an element with a malformed qvalue is ignored; a coding named
// twice keeps its lower qvalue. Absent, empty, or nothing acceptable gives "identity" (RFC
// 9110 §12.5.3 lets a server fall back to no coding, even after identity;q=0). It allocates
// nothing: the edge's compression asks it on every hit.
func NormalizeAcceptEncoding(lines []string) string {
	const unset = -1.0
	br, gz, id, star := unset, unset, unset, unset
	for _, line := range lines {
		for line != "" {
			var el string
			el, line, _ = strings.Cut(line, ",")
			coding, params, _ := strings.Cut(el, ";")
			coding = textproto.TrimString(coding)
			if coding == "" {
				continue
			}
			weight, ok := 1.0, true
			for params != "" {
				var p string
				p, params, _ = strings.Cut(params, ";")
				k, v, _ := strings.Cut(textproto.TrimString(p), "=")
				if strings.EqualFold(strings.TrimSpace(k), "q") {
					weight, ok = parseQValue(strings.TrimSpace(v))
				}
			}
			if !ok {
				continue
			}
			var slot *float64
			switch {
			case strings.EqualFold(coding, "br"):
				slot = &br
			case strings.EqualFold(coding, "gzip"), strings.EqualFold(coding, "x-gzip"):
				slot = &gz
			case strings.EqualFold(coding, "identity"):
				slot = &id
			case coding == "*":
				slot = &star
			default:
				continue
			}
			if *slot == unset || weight < *slot {
				*slot = weight
			}
		}
	}
	if br == unset {
		br = max(star, 0)
	}
	if gz == unset {
		gz = max(star, 0)
	}
	best, bestQ := "identity", 0.0
	if br > bestQ {
		best, bestQ = "br", br
	}
	if gz > bestQ {
		best, bestQ = "gzip", gz
	}
	if best != "identity" && id > bestQ {
		return "identity"
	}
	return best
}

// parseQValue parses a qvalue: "0" ["." 0*3DIGIT] / "1" ["." 0*3("0")] (RFC 9110 §12.4.2).
func parseQValue(s string) (float64, bool) {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	if len(s) > 1 {
		if s[1] != '.' {
			return 0, false
		}
		for i := 2; i < len(s); i++ {
			if !isDigit(s[i]) || (s[0] == '1' && s[i] != '0') {
				return 0, false
			}
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}
