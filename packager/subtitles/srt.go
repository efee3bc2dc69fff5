package subtitles

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// ParseSRT reads SubRip as people write it: a BOM, CRLF or LF, a comma or a dot before the
// milliseconds, one-digit hours, extra blank lines, a missing counter line or final blank
// line or blank line between cues, the X1:… Y2:… coordinates some tools append to the timing line (ignored). The
// HTML-ish markup becomes WebVTT markup (<i>, <b>, <u>), or plain text where WebVTT has no
// equivalent (<font>, other tags); an ASS alignment override {\an7}–{\an9} puts the cue at the
// top (line:0), any other {\…} override is dropped. What is not a cue is refused with its line.
func ParseSRT(name string, data []byte) (*Track, error) {
	// SRT has no declared encoding and old files are often Windows-1252: refuse what is not
	// UTF-8 rather than show U+FFFD in place of every accented letter.
	if !utf8.Valid(data) {
		line := 1 + bytes.Count(data[:badUTF8(data)], []byte("\n"))
		return nil, errAt(name, line, "not UTF-8 text (Windows-1252 or Latin-1?): save the file as UTF-8")
	}
	lines := splitLines(data)
	t := &Track{}
	i := 0
	for i < len(lines) {
		if strings.TrimSpace(lines[i]) == "" {
			i++
			continue
		}
		// A counter line (digits) is optional; the timing line is what starts a cue.
		timing := i
		if !strings.Contains(lines[i], "-->") {
			if _, err := digits(strings.TrimSpace(lines[i]), 1, 12); err != nil {
				return nil, errAt(name, i+1, "want a cue number or a timing line, got %q", clip(lines[i]))
			}
			timing = i + 1
			if timing >= len(lines) || !strings.Contains(lines[timing], "-->") {
				got := "end of file"
				if timing < len(lines) {
					got = fmt.Sprintf("%q", clip(lines[timing]))
				}
				return nil, errAt(name, timing+1, "want a timing line \"hh:mm:ss,mmm --> hh:mm:ss,mmm\" after cue number %s, got %s", strings.TrimSpace(lines[i]), got)
			}
		}
		s, e, _, err := parseTiming(lines[timing], parseSRTTime)
		if err != nil {
			return nil, errAt(name, timing+1, "%v", err)
		}
		if e < s {
			return nil, errAt(name, timing+1, "cue ends (%s) before it starts (%s)", FormatTime(e), FormatTime(s))
		}
		i = timing + 1
		var text []string
		for i < len(lines) && strings.TrimSpace(lines[i]) != "" {
			// A timing line with no blank line before it starts the next cue (its counter,
			// if any, is the line before): files cut and pasted by hand lose blank lines.
			if strings.Contains(lines[i], "-->") {
				if _, _, _, err := parseTiming(lines[i], parseSRTTime); err == nil {
					if n := len(text); n > 0 {
						if _, err := digits(strings.TrimSpace(text[n-1]), 1, 12); err == nil {
							text, i = text[:n-1], i-1
						}
					}
					break
				}
			}
			text = append(text, lines[i])
			i++
		}
		c := Cue{Start: s, End: e, Line: timing + 1}
		c.Text, c.Settings = srtText(text)
		t.Cues = append(t.Cues, c)
	}
	if len(t.Cues) == 0 {
		return nil, errAt(name, 0, "no cues")
	}
	t.finish(name)
	return t, nil
}

// parseSRTTime reads h[h]:mm:ss,mmm or h[h]:mm:ss.mmm at the start of s.
func parseSRTTime(s string) (int64, string, error) {
	tok := s
	if i := strings.IndexAny(s, " \t-"); i >= 0 {
		tok = s[:i]
	}
	bad := func(what string) (int64, string, error) {
		return 0, "", fmt.Errorf("timestamp %q: %s", clip(tok), what)
	}
	fields := strings.Split(tok, ":")
	if len(fields) != 3 {
		return bad("want hh:mm:ss,mmm")
	}
	h, err := digits(fields[0], 1, 4)
	if err != nil {
		return bad("bad hours")
	}
	m, err := digits(fields[1], 1, 2)
	if err != nil || m > 59 {
		return bad("bad minutes")
	}
	secStr, msStr, ok := strings.Cut(fields[2], ",")
	if !ok {
		secStr, msStr, ok = strings.Cut(fields[2], ".")
	}
	if !ok {
		return bad("want a comma and three digits of milliseconds")
	}
	sec, err := digits(secStr, 1, 2)
	if err != nil || sec > 59 {
		return bad("bad seconds")
	}
	ms, err := digits(msStr, 3, 3)
	if err != nil {
		return bad("bad milliseconds")
	}
	return ((h*60+m)*60+sec)*1000 + ms, s[len(tok):], nil
}

var (
	srtTag      = regexp.MustCompile(`(?i)<\s*(/?)\s*([a-z]+)[^>]*>`)
	srtOverride = regexp.MustCompile(`\{\\[^}]*\}`)
	srtTopAlign = regexp.MustCompile(`\\an[789]`)
)

// srtText turns SRT cue lines into WebVTT cue text (and the settings an override asks for).
func srtText(lines []string) (string, Settings) {
	var st Settings
	var out []string
	for _, l := range lines {
		l = strings.TrimRight(l, " \t")
		for _, o := range srtOverride.FindAllString(l, -1) {
			if srtTopAlign.MatchString(o) {
				st.Line = "0"
			}
		}
		l = srtOverride.ReplaceAllString(l, "")
		var b strings.Builder
		last := 0
		for _, m := range srtTag.FindAllStringSubmatchIndex(l, -1) {
			b.WriteString(escapeText(l[last:m[0]]))
			last = m[1]
			closing, tag := l[m[2]:m[3]], strings.ToLower(l[m[4]:m[5]])
			if tag == "i" || tag == "b" || tag == "u" {
				b.WriteString("<" + closing + tag + ">")
			}
		}
		b.WriteString(escapeText(l[last:]))
		if s := b.String(); strings.TrimSpace(PlainText(s)) != "" {
			out = append(out, s)
		}
	}
	return balanceTags(strings.Join(out, "\n")), st
}

// balanceTags closes the <i>, <b>, <u> a SRT author left open and drops closers with no
// opener, so the WebVTT text is well formed.
func balanceTags(s string) string {
	var stack []string
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '<' {
			j := strings.IndexByte(s[i:], '>')
			tag := s[i+1 : i+j]
			if name, ok := strings.CutPrefix(tag, "/"); ok {
				if k := slices.Index(stack, name); k >= 0 {
					for len(stack) > k {
						b.WriteString("</" + stack[len(stack)-1] + ">")
						stack = stack[:len(stack)-1]
					}
				}
			} else {
				stack = append(stack, tag)
				b.WriteString("<" + tag + ">")
			}
			i += j + 1
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	for len(stack) > 0 {
		b.WriteString("</" + stack[len(stack)-1] + ">")
		stack = stack[:len(stack)-1]
	}
	return b.String()
}

// badUTF8 is the offset of the first byte that is not UTF-8.
func badUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}
