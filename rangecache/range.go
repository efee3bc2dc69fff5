package rangecache

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// DefaultMaxRanges is the number of range-specs a Range header may hold when
// Options.MaxRanges is zero.
const DefaultMaxRanges = 16

// maxAmplification bounds the bytes a satisfiable Range may ask for: more than this many times the
// representation's length (counting overlaps before coalescing) and the header is ignored.
const maxAmplification = 2

// Errors explaining why Parse ignored a Range header. Every one of them means "serve 200 with the
// full representation" (RFC 9110 §14.2): none of them is a reason to fail the request.
var (
	// ErrSyntax: the header does not match the ranges-specifier grammar of RFC 9110 §14.1.2 and
	// §14.2 (including an int-range whose last-pos is below its first-pos, and a number too
	// large for int64).
	ErrSyntax = errors.New("rangecache: invalid Range header")
	// ErrUnit: the range unit is not "bytes" (RFC 9110 §14.2: MUST ignore).
	ErrUnit = errors.New("rangecache: unsupported range unit")
	// ErrTooManyRanges: more range-specs than Options.MaxRanges.
	ErrTooManyRanges = errors.New("rangecache: too many ranges")
	// ErrExcessive: the ranges add up to more than twice the representation (many overlapping
	// ranges, RFC 9110 §14.2).
	ErrExcessive = errors.New("rangecache: ranges request more than twice the representation")
	// ErrUnknownLength: Parse was given a negative size; ranges cannot be resolved.
	ErrUnknownLength = errors.New("rangecache: representation length unknown")

	errOverflow = fmt.Errorf("%w: number overflows int64", ErrSyntax)
	errInverted = fmt.Errorf("%w: last-pos less than first-pos", ErrSyntax)
	errEmpty    = fmt.Errorf("%w: no range-spec", ErrSyntax)
)

// Range is one satisfiable byte range, resolved against a representation of known length:
// the bytes [Start, Start+Length).
type Range struct{ Start, Length int64 }

// ContentRange returns the Content-Range field value for r in a representation of size bytes,
// e.g. "bytes 0-99/1000" (RFC 9110 §14.4).
func (r Range) ContentRange(size int64) string {
	var b [64]byte
	return string(appendContentRange(b[:0], r, size))
}

func appendContentRange(b []byte, r Range, size int64) []byte {
	b = append(b, "bytes "...)
	b = strconv.AppendInt(b, r.Start, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, r.Start+r.Length-1, 10)
	b = append(b, '/')
	return strconv.AppendInt(b, size, 10)
}

// UnsatisfiedContentRange returns the Content-Range field value of a 416 reply for a
// representation of size bytes: "bytes */size" (RFC 9110 §14.4, §15.5.17).
func UnsatisfiedContentRange(size int64) string {
	return "bytes */" + strconv.FormatInt(size, 10)
}

// Kind says how to answer a request after evaluating its Range header.
type Kind uint8

const (
	// Ignore: answer as if there were no Range header (200 with the full representation).
	Ignore Kind = iota
	// Satisfiable: answer 206 with Result.Ranges — one range as a single part with
	// Content-Range, several as multipart/byteranges.
	Satisfiable
	// Unsatisfiable: answer 416 with Content-Range: bytes */size.
	Unsatisfiable
)

func (k Kind) String() string {
	switch k {
	case Ignore:
		return "Ignore"
	case Satisfiable:
		return "Satisfiable"
	case Unsatisfiable:
		return "Unsatisfiable"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Result is the evaluation of a Range header.
type Result struct {
	Kind Kind
	// Ranges is set only for Satisfiable: one or more ranges, sorted by Start, pairwise neither
	// overlapping nor adjacent, each with Length > 0 and lying within [0, size).
	Ranges []Range
}

// Options tunes Parse. The zero value is ready to use.
type Options struct {
	// MaxRanges is the most range-specs a Range header may hold (counted as sent, before
	// coalescing); more and the header is ignored. Zero or negative means DefaultMaxRanges.
	// 1 disables multipart replies.
	MaxRanges int
}

// Parse evaluates a Range header field value (RFC 9110 §14.1.2, §14.2) for a representation of
// size bytes. An empty header means the field is absent.
//
// The range unit is matched case-insensitively (§14.1); optional whitespace is accepted around
// each range-spec (the list rule, §5.6.1), and empty list elements are skipped; whitespace inside
// a range-spec or around "=" is a syntax error. A suffix range "-N" selects the last N bytes (all of
// them if N ≥ size), an open-ended range "N-" runs to the end, and a last-pos past the end is
// clamped to size-1.
//
// Results:
//   - Ignore, nil: no header, or the only satisfiable ranges are suffix ranges of a zero-length
//     representation (they select zero bytes; the full, empty representation is the answer).
//   - Ignore, err: the header must be ignored (unknown unit) or may be and is ignored (syntax
//     error, more than opt.MaxRanges range-specs, ranges adding up to more than twice the
//     representation), as §14.2 allows. err explains why, for logs and metrics; it never means
//     the request failed.
//   - Satisfiable, nil: at least one range-spec is satisfiable (§14.1.2); Ranges are the
//     satisfiable ones, with overlapping or adjacent ranges coalesced (§14.6 allows it), so
//     "bytes=0-0,0-0" is one range. They are sorted by Start even when none overlap — a
//     deliberate departure from §14.6's SHOULD (send parts in request order) that keeps replies
//     canonical; every part carries its own Content-Range.
//   - Unsatisfiable, nil: the syntax is valid but no range-spec is satisfiable, e.g. every
//     first-pos is at or past the end (§14.1.2, §15.5.17).
//
// A negative size (length unknown) gives Ignore with ErrUnknownLength once the unit is known to
// be bytes.
func Parse(header string, size int64, opt Options) (Result, error) {
	h := trimOWS(header)
	if h == "" {
		return Result{}, nil
	}
	eq := 0
	for eq < len(h) && isTchar(h[eq]) {
		eq++
	}
	if eq == 0 || eq == len(h) || h[eq] != '=' {
		return Result{}, ErrSyntax
	}
	if !asciiEqualFold(h[:eq], "bytes") {
		return Result{}, ErrUnit
	}
	if size < 0 {
		return Result{}, ErrUnknownLength
	}
	maxRanges := opt.MaxRanges
	if maxRanges <= 0 {
		maxRanges = DefaultMaxRanges
	}

	var buf [DefaultMaxRanges]Range
	rs := buf[:0]
	specs := 0
	emptySuffix := false // a satisfiable suffix range of a zero-length representation
	for rest := h[eq+1:]; ; {
		var elem string
		comma := strings.IndexByte(rest, ',')
		if comma < 0 {
			elem = rest
		} else {
			elem, rest = rest[:comma], rest[comma+1:]
		}
		if elem = trimOWS(elem); elem != "" {
			if specs++; specs > maxRanges {
				return Result{}, ErrTooManyRanges
			}
			r, ok, err := parseSpec(elem, size)
			if err != nil {
				return Result{}, err
			}
			if ok {
				if r.Length == 0 {
					emptySuffix = true
				} else {
					rs = append(rs, r)
				}
			}
		}
		if comma < 0 {
			break
		}
	}
	if specs == 0 {
		return Result{}, errEmpty
	}
	if len(rs) == 0 {
		if emptySuffix {
			return Result{}, nil
		}
		return Result{Kind: Unsatisfiable}, nil
	}
	if len(rs) > 1 {
		limit := int64(math.MaxInt64)
		if size <= math.MaxInt64/maxAmplification {
			limit = size * maxAmplification
		}
		var total int64
		for _, r := range rs {
			if r.Length > limit-total {
				return Result{}, ErrExcessive
			}
			total += r.Length
		}
		rs = coalesce(rs)
	}
	return Result{Kind: Satisfiable, Ranges: slices.Clone(rs)}, nil
}

// parseSpec parses one non-empty range-spec of the bytes unit and resolves it against size ≥ 0.
// ok reports whether it is satisfiable; a satisfiable spec has Length > 0 unless size is 0.
func parseSpec(s string, size int64) (r Range, ok bool, err error) {
	if s[0] == '-' { // suffix-range = "-" suffix-length
		n, rest, err := parseDigits(s[1:])
		if err != nil {
			return Range{}, false, err
		}
		if rest != "" {
			return Range{}, false, ErrSyntax
		}
		if n == 0 {
			return Range{}, false, nil // valid, never satisfiable
		}
		n = min(n, size)
		return Range{Start: size - n, Length: n}, true, nil
	}
	// int-range = first-pos "-" [ last-pos ]
	first, rest, err := parseDigits(s)
	if err != nil {
		return Range{}, false, err
	}
	if rest == "" || rest[0] != '-' {
		return Range{}, false, ErrSyntax
	}
	last := int64(math.MaxInt64)
	if rest = rest[1:]; rest != "" {
		if last, rest, err = parseDigits(rest); err != nil {
			return Range{}, false, err
		}
		if rest != "" {
			return Range{}, false, ErrSyntax
		}
		if last < first {
			return Range{}, false, errInverted
		}
	}
	if first >= size {
		return Range{}, false, nil
	}
	last = min(last, size-1)
	return Range{Start: first, Length: last - first + 1}, true, nil
}

// parseDigits parses the 1*DIGIT at the start of s and returns the rest.
func parseDigits(s string) (n int64, rest string, err error) {
	i := 0
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		d := int64(s[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, "", errOverflow
		}
		n = n*10 + d
	}
	if i == 0 {
		return 0, "", ErrSyntax
	}
	return n, s[i:], nil
}

// coalesce sorts rs by Start and merges overlapping or adjacent ranges, in place.
func coalesce(rs []Range) []Range {
	slices.SortFunc(rs, func(a, b Range) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		end := last.Start + last.Length // ranges lie within [0, size): no overflow
		if r.Start <= end {
			if e := r.Start + r.Length; e > end {
				last.Length = e - last.Start
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// trimOWS removes leading and trailing OWS (SP / HTAB, RFC 9110 §5.6.3).
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isTchar reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// asciiEqualFold compares s with lower, which is lower-case ASCII, ignoring ASCII case.
func asciiEqualFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// Evaluate evaluates a request's Range and If-Range against a representation of size bytes
// with header h (RFC 9110 §14.2, §13.1.5): Ignore serves the whole representation.
func Evaluate(r *http.Request, h http.Header, size int64) (Kind, []Range) {
	rng := r.Header.Get("Range")
	if rng == "" || !IfRange(r.Header.Get("If-Range"), h.Get("ETag"), h.Get("Last-Modified"), h.Get("Date")) {
		return Ignore, nil
	}
	res, _ := Parse(rng, size, Options{})
	return res.Kind, res.Ranges
}
