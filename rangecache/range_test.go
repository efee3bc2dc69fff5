package rangecache

import (
	"errors"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// repeat joins n copies of spec with commas: repeat("0-0", 3) == "0-0,0-0,0-0".
func repeat(spec string, n int) string {
	return strings.TrimSuffix(strings.Repeat(spec+",", n), ",")
}

// distinct returns n pairwise separated one-byte range-specs: "0-0,2-2,4-4,…".
func distinct(n int) string {
	specs := make([]string, n)
	for i := range specs {
		p := strconv.Itoa(2 * i)
		specs[i] = p + "-" + p
	}
	return strings.Join(specs, ",")
}

func TestParse(t *testing.T) {
	const maxI = "9223372036854775807"
	const over = "9223372036854775808" // MaxInt64 + 1
	type rs = []Range
	tests := []struct {
		name   string
		rfc    string // RFC 9110 section the case exercises
		header string
		size   int64
		opt    Options
		kind   Kind
		ranges []Range
		err    error // errors.Is target; nil: err must be nil
	}{
		// Absent field.
		{"absent", "§14.2", "", 1000, Options{}, Ignore, nil, nil},
		{"whitespace only is absent", "§5.6.3", " \t ", 1000, Options{}, Ignore, nil, nil},

		// Single int-range.
		{"single", "§14.1.2", "bytes=0-99", 1000, Options{}, Satisfiable, rs{{0, 100}}, nil},
		{"first byte", "§14.1.2", "bytes=0-0", 1000, Options{}, Satisfiable, rs{{0, 1}}, nil},
		{"last byte", "§14.1.2", "bytes=999-999", 1000, Options{}, Satisfiable, rs{{999, 1}}, nil},
		{"middle", "§14.1.2", "bytes=500-999", 10000, Options{}, Satisfiable, rs{{500, 500}}, nil},
		{"leading zeros", "§14.1.2 1*DIGIT", "bytes=000000000000000000000010-0000000000000000000000019", 1000, Options{}, Satisfiable, rs{{10, 10}}, nil},
		{"open-ended", "§14.1.2", "bytes=500-", 1000, Options{}, Satisfiable, rs{{500, 500}}, nil},
		{"open-ended from 0", "§14.1.2", "bytes=0-", 1000, Options{}, Satisfiable, rs{{0, 1000}}, nil},
		{"open-ended at last byte", "§14.1.2", "bytes=999-", 1000, Options{}, Satisfiable, rs{{999, 1}}, nil},
		{"last-pos past end clamped", "§14.1.2", "bytes=900-5000", 1000, Options{}, Satisfiable, rs{{900, 100}}, nil},
		{"last-pos = size clamped", "§14.1.2", "bytes=0-1000", 1000, Options{}, Satisfiable, rs{{0, 1000}}, nil},
		{"last-pos MaxInt64 clamped", "§14.1.2", "bytes=0-" + maxI, 1000, Options{}, Satisfiable, rs{{0, 1000}}, nil},
		{"first-pos at end", "§14.1.2, §15.5.17", "bytes=1000-", 1000, Options{}, Unsatisfiable, nil, nil},
		{"first-pos past end", "§14.1.2, §15.5.17", "bytes=5000-6000", 1000, Options{}, Unsatisfiable, nil, nil},
		{"first-pos MaxInt64", "§14.1.2, §15.5.17", "bytes=" + maxI + "-", 1000, Options{}, Unsatisfiable, nil, nil},
		{"huge representation", "§14.1.2", "bytes=" + strconv.FormatInt(math.MaxInt64-1, 10) + "-", math.MaxInt64, Options{}, Satisfiable, rs{{math.MaxInt64 - 1, 1}}, nil},

		// Suffix ranges.
		{"suffix", "§14.1.2", "bytes=-500", 1000, Options{}, Satisfiable, rs{{500, 500}}, nil},
		{"suffix one byte", "§14.1.2", "bytes=-1", 1000, Options{}, Satisfiable, rs{{999, 1}}, nil},
		{"suffix = size", "§14.1.2", "bytes=-1000", 1000, Options{}, Satisfiable, rs{{0, 1000}}, nil},
		{"suffix larger than size", "§14.1.2", "bytes=-5000", 1000, Options{}, Satisfiable, rs{{0, 1000}}, nil},
		{"suffix MaxInt64", "§14.1.2", "bytes=-" + maxI, 1000, Options{}, Satisfiable, rs{{0, 1000}}, nil},
		{"suffix zero unsatisfiable", "§14.1.2", "bytes=-0", 1000, Options{}, Unsatisfiable, nil, nil},

		// Zero-length representation: only a non-zero suffix-range is satisfiable, and it selects
		// nothing, so the (empty) full representation is the answer.
		{"empty: int-range", "§14.1.2", "bytes=0-", 0, Options{}, Unsatisfiable, nil, nil},
		{"empty: 0-0", "§14.1.2", "bytes=0-0", 0, Options{}, Unsatisfiable, nil, nil},
		{"empty: suffix", "§14.1.2", "bytes=-1", 0, Options{}, Ignore, nil, nil},
		{"empty: suffix and int-range", "§14.1.2", "bytes=0-10,-1", 0, Options{}, Ignore, nil, nil},
		{"empty: zero suffix", "§14.1.2", "bytes=-0", 0, Options{}, Unsatisfiable, nil, nil},

		// Multiple ranges.
		{"multi", "§14.1.2, §14.6", "bytes=0-99,200-299", 1000, Options{}, Satisfiable, rs{{0, 100}, {200, 100}}, nil},
		{"multi with suffix", "§14.1.2, §14.6", "bytes=0-0,-1", 1000, Options{}, Satisfiable, rs{{0, 1}, {999, 1}}, nil},
		{"multi, one unsatisfiable dropped", "§14.1.2", "bytes=0-99,5000-", 1000, Options{}, Satisfiable, rs{{0, 100}}, nil},
		{"multi, zero suffix dropped", "§14.1.2", "bytes=-0,10-19", 1000, Options{}, Satisfiable, rs{{10, 10}}, nil},
		{"multi, all unsatisfiable", "§14.1.2, §15.5.17", "bytes=1000-,2000-3000,-0", 1000, Options{}, Unsatisfiable, nil, nil},
		{"overlapping", "§14.2, §14.6", "bytes=0-499,400-599", 1000, Options{}, Satisfiable, rs{{0, 600}}, nil},
		{"contained", "§14.6", "bytes=0-999,100-199", 1000, Options{}, Satisfiable, rs{{0, 1000}}, nil},
		{"adjacent", "§14.6", "bytes=0-99,100-199", 1000, Options{}, Satisfiable, rs{{0, 200}}, nil},
		{"one-byte gap kept", "§14.6", "bytes=0-99,101-199", 1000, Options{}, Satisfiable, rs{{0, 100}, {101, 99}}, nil},
		{"out of order", "§14.2, §14.6", "bytes=500-599,0-99", 1000, Options{}, Satisfiable, rs{{0, 100}, {500, 100}}, nil},
		{"out of order overlapping", "§14.2, §14.6", "bytes=200-299,0-250", 1000, Options{}, Satisfiable, rs{{0, 300}}, nil},
		{"out of order chain", "§14.6", "bytes=30-39,10-19,20-29,0-9", 1000, Options{}, Satisfiable, rs{{0, 40}}, nil},
		{"suffix overlapping int-range", "§14.6", "bytes=-100,850-949", 1000, Options{}, Satisfiable, rs{{850, 150}}, nil},
		{"0-0 repeated collapses", "§14.2", "bytes=0-0,0-0,0-0", 1000, Options{}, Satisfiable, rs{{0, 1}}, nil},
		{"0-0 x16 collapses", "§14.2", "bytes=" + repeat("0-0", 16), 1000, Options{}, Satisfiable, rs{{0, 1}}, nil},
		{"two full ranges allowed", "§14.2", "bytes=0-,-1000", 1000, Options{}, Satisfiable, rs{{0, 1000}}, nil},

		// Limits against abuse (§14.2: a server MAY ignore many or overlapping ranges).
		{"0-0 x1000", "§14.2", "bytes=" + repeat("0-0", 1000), 1000, Options{}, Ignore, nil, ErrTooManyRanges},
		{"16 ranges", "§14.2", "bytes=" + distinct(16), 1000, Options{}, Satisfiable, func() rs {
			var r rs
			for i := range 16 {
				r = append(r, Range{int64(2 * i), 1})
			}
			return r
		}(), nil},
		{"17 ranges", "§14.2", "bytes=" + distinct(17), 1000, Options{}, Ignore, nil, ErrTooManyRanges},
		{"unsatisfiable ranges count", "§14.2", "bytes=" + repeat("5000-", 17), 1000, Options{}, Ignore, nil, ErrTooManyRanges},
		{"MaxRanges 1, one range", "§14.2", "bytes=5-9", 1000, Options{MaxRanges: 1}, Satisfiable, rs{{5, 5}}, nil},
		{"MaxRanges 1, two ranges", "§14.2", "bytes=5-9,20-29", 1000, Options{MaxRanges: 1}, Ignore, nil, ErrTooManyRanges},
		{"MaxRanges 100", "§14.2", "bytes=" + distinct(17), 1000, Options{MaxRanges: 100}, Satisfiable, func() rs {
			var r rs
			for i := range 17 {
				r = append(r, Range{int64(2 * i), 1})
			}
			return r
		}(), nil},
		{"negative MaxRanges is default", "§14.2", "bytes=" + distinct(17), 1000, Options{MaxRanges: -1}, Ignore, nil, ErrTooManyRanges},
		{"three full ranges", "§14.2", "bytes=0-,0-,0-", 1000, Options{}, Ignore, nil, ErrExcessive},
		{"overlaps over 2x size", "§14.2", "bytes=-1000,0-999,500-", 1000, Options{}, Ignore, nil, ErrExcessive},
		{"many small overlapping over 2x", "§14.2", "bytes=" + repeat("0-1", 11), 10, Options{}, Ignore, nil, ErrExcessive},
		{"many small overlapping at 2x", "§14.2", "bytes=" + repeat("0-1", 10), 10, Options{}, Satisfiable, rs{{0, 2}}, nil},
		{"excess check does not overflow", "§14.2", "bytes=0-,0-", math.MaxInt64, Options{}, Ignore, nil, ErrExcessive},
		{"ranges of a huge representation", "§14.2", "bytes=-1,0-0", math.MaxInt64, Options{}, Satisfiable, rs{{0, 1}, {math.MaxInt64 - 1, 1}}, nil},

		// Range unit: case-insensitive (§14.1); other units must be ignored (§14.2).
		{"unit Bytes", "§14.1", "Bytes=0-1", 1000, Options{}, Satisfiable, rs{{0, 2}}, nil},
		{"unit BYTES", "§14.1", "BYTES=0-1", 1000, Options{}, Satisfiable, rs{{0, 2}}, nil},
		{"unit bYtEs", "§14.1", "bYtEs=-1", 1000, Options{}, Satisfiable, rs{{999, 1}}, nil},
		{"unit items", "§14.1, §14.2", "items=0-5", 1000, Options{}, Ignore, nil, ErrUnit},
		{"unit none", "§14.1, §14.2", "none=0-5", 1000, Options{}, Ignore, nil, ErrUnit},
		{"unit bytesx", "§14.1, §14.2", "bytesx=0-5", 1000, Options{}, Ignore, nil, ErrUnit},
		{"unit byte", "§14.1, §14.2", "byte=0-5", 1000, Options{}, Ignore, nil, ErrUnit},
		{"unit with other-range", "§14.1.2 other-range", "pages=a:b", 1000, Options{}, Ignore, nil, ErrUnit},

		// Whitespace: OWS around list elements (§5.6.1), none inside a range-spec (§14.1.2).
		{"OWS around comma", "§5.6.1", "bytes=0-1 , 3-4", 1000, Options{}, Satisfiable, rs{{0, 2}, {3, 2}}, nil},
		{"HTAB around comma", "§5.6.1", "bytes=0-1\t,\t3-4", 1000, Options{}, Satisfiable, rs{{0, 2}, {3, 2}}, nil},
		{"OWS after =", "§5.6.1", "bytes= 0-1", 1000, Options{}, Satisfiable, rs{{0, 2}}, nil},
		{"OWS around field value", "§5.5", " \tbytes=0-1\t ", 1000, Options{}, Satisfiable, rs{{0, 2}}, nil},
		{"empty list elements", "§5.6.1", "bytes=,0-1,, ,3-4,", 1000, Options{}, Satisfiable, rs{{0, 2}, {3, 2}}, nil},
		{"SP before =", "§14.2", "bytes =0-1", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"SP inside int-range", "§14.1.2", "bytes=0 -1", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"SP after dash", "§14.1.2", "bytes=0- 1", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"SP inside suffix", "§14.1.2", "bytes=- 1", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"CR is not OWS", "§5.6.3", "bytes=0-1\r", 1000, Options{}, Ignore, nil, ErrSyntax},

		// Syntax errors: the header is ignored (§14.2: MAY ignore an invalid ranges-specifier).
		{"no range-set", "§14.1.2", "bytes=", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"only commas", "§14.1.2 1#range-spec", "bytes=, ,", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"no =", "§14.2", "bytes", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"no unit", "§14.2", "=0-1", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"unit not a token", "§14.1", "by(tes=0-1", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"non-ASCII unit", "§14.1", "bytés=0-1", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"inverted int-range", "§14.1.2", "bytes=1-0", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"inverted past end", "§14.1.2", "bytes=5000-4000", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"lone dash", "§14.1.2", "bytes=-", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"double dash", "§14.1.2", "bytes=--5", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"negative first-pos", "§14.1.2", "bytes=-5-10", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"negative last-pos", "§14.1.2", "bytes=5--10", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"plus sign", "§14.1.2", "bytes=+1-2", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"hex", "§14.1.2", "bytes=0x10-20", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"letters", "§14.1.2", "bytes=a-b", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"three numbers", "§14.1.2", "bytes=1-2-3", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"number only", "§14.1.2", "bytes=5", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"parameter", "§14.1.2", "bytes=0-1;q=1", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"semicolon list", "§14.1.2", "bytes=0-1;2-3", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"garbage after valid", "§14.1.2", "bytes=0-1,garbage", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"garbage before valid", "§14.1.2", "bytes=x,0-1", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"second unit", "§14.2", "bytes=0-1,bytes=2-3", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"Arabic-Indic digit", "§14.1.2 DIGIT", "bytes=\u0660-1", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"NUL", "§14.1.2", "bytes=0-1\x00", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"garbage", "§14.2", "garbage", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"syntax error on empty representation", "§14.2", "bytes=1-0", 0, Options{}, Ignore, nil, ErrSyntax},

		// Numbers beyond int64 are an error, never a wrap.
		{"first-pos overflow", "§14.1.2", "bytes=" + over + "-", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"last-pos overflow", "§14.1.2", "bytes=0-" + over, 1000, Options{}, Ignore, nil, ErrSyntax},
		{"suffix overflow", "§14.1.2", "bytes=-" + over, 1000, Options{}, Ignore, nil, ErrSyntax},
		{"huge overflow", "§14.1.2", "bytes=0-99999999999999999999999999999999", 1000, Options{}, Ignore, nil, ErrSyntax},
		{"overflow wrapping to small", "§14.1.2", "bytes=18446744073709551617-18446744073709551618", 1000, Options{}, Ignore, nil, ErrSyntax},

		// Unknown length.
		{"unknown length", "§14.2", "bytes=0-1", -1, Options{}, Ignore, nil, ErrUnknownLength},
		{"unknown length, other unit", "§14.2", "items=0-1", -1, Options{}, Ignore, nil, ErrUnit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.header, tc.size, tc.opt)
			if tc.err == nil && err != nil {
				t.Fatalf("Parse(%.60q, %d) error %v, want none (%s)", tc.header, tc.size, err, tc.rfc)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("Parse(%.60q, %d) error %v, want %v (%s)", tc.header, tc.size, err, tc.err, tc.rfc)
			}
			if got.Kind != tc.kind || !slices.Equal(got.Ranges, tc.ranges) {
				t.Fatalf("Parse(%.60q, %d) = %v %v, want %v %v (%s)", tc.header, tc.size, got.Kind, got.Ranges, tc.kind, tc.ranges, tc.rfc)
			}
			checkResult(t, tc.header, tc.size, tc.opt, got, err)
		})
	}
}

// checkResult asserts the invariants every Parse result holds.
func checkResult(t *testing.T, header string, size int64, opt Options, res Result, err error) {
	t.Helper()
	if err != nil && (res.Kind != Ignore || res.Ranges != nil) {
		t.Fatalf("Parse(%q, %d) = %v %v with error %v: errors must come with Ignore and no ranges", header, size, res.Kind, res.Ranges, err)
	}
	if res.Kind != Satisfiable {
		if res.Ranges != nil {
			t.Fatalf("Parse(%q, %d) = %v with ranges %v", header, size, res.Kind, res.Ranges)
		}
		return
	}
	maxRanges := opt.MaxRanges
	if maxRanges <= 0 {
		maxRanges = DefaultMaxRanges
	}
	if len(res.Ranges) == 0 || len(res.Ranges) > maxRanges {
		t.Fatalf("Parse(%q, %d): Satisfiable with %d ranges", header, size, len(res.Ranges))
	}
	var total int64
	for i, r := range res.Ranges {
		if r.Length <= 0 || r.Start < 0 || r.Start >= size || r.Length > size-r.Start {
			t.Fatalf("Parse(%q, %d): range %+v outside [0,%d) or empty", header, size, r, size)
		}
		if i > 0 {
			p := res.Ranges[i-1]
			if p.Start+p.Length >= r.Start { // both within [0,size): no overflow
				t.Fatalf("Parse(%q, %d): ranges %+v, %+v overlap, touch or are out of order", header, size, p, r)
			}
		}
		total += r.Length
	}
	if total > size {
		t.Fatalf("Parse(%q, %d): ranges total %d bytes", header, size, total)
	}
}

func TestContentRange(t *testing.T) {
	tests := []struct {
		r    Range
		size int64
		want string
	}{
		{Range{0, 100}, 1000, "bytes 0-99/1000"},                // RFC 9110 §14.4
		{Range{999, 1}, 1000, "bytes 999-999/1000"},             // §14.4: last-pos inclusive
		{Range{0, 1}, 1, "bytes 0-0/1"},                         // §14.4
		{Range{21010, 26012}, 47022, "bytes 21010-47021/47022"}, // §14.4's example
		{Range{math.MaxInt64 - 1, 1}, math.MaxInt64, "bytes 9223372036854775806-9223372036854775806/9223372036854775807"},
	}
	for _, tc := range tests {
		if got := tc.r.ContentRange(tc.size); got != tc.want {
			t.Errorf("%+v.ContentRange(%d) = %q, want %q", tc.r, tc.size, got, tc.want)
		}
	}
	// RFC 9110 §14.4, §15.5.17: a 416 carries "bytes */complete-length".
	for size, want := range map[int64]string{1234: "bytes */1234", 0: "bytes */0"} {
		if got := UnsatisfiedContentRange(size); got != want {
			t.Errorf("UnsatisfiedContentRange(%d) = %q, want %q", size, got, want)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Ignore: "Ignore", Satisfiable: "Satisfiable", Unsatisfiable: "Unsatisfiable", 7: "Kind(7)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

// TestParseAllocs holds the single-range fast path to one allocation (the returned slice).
func TestParseAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	allocs := testing.AllocsPerRun(100, func() {
		if res, _ := Parse("bytes=1048576-2097151", 1<<30, Options{}); res.Kind != Satisfiable {
			t.Fatal("not satisfiable")
		}
	})
	if allocs > 1 {
		t.Errorf("Parse of a single range: %v allocs, want ≤ 1", allocs)
	}
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, header string }{
		{"single", "bytes=1048576-2097151"},
		{"suffix", "bytes=-500"},
		{"multi4", "bytes=0-99,200-299,150-250,1000-"},
		{"ignored-1000", "bytes=" + repeat("0-0", 1000)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(bc.header, 1<<30, Options{}); err != nil && bc.name != "ignored-1000" {
					b.Fatal(err)
				}
			}
		})
	}
}

// refParse is an independent, slower model of Parse built on strings, regexp and strconv, used to
// cross-check it in FuzzParse. It returns the kind, the satisfiable ranges before coalescing, and
// whether the header is ignored for an error.
var (
	refToken  = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	refInt    = regexp.MustCompile(`^([0-9]+)-([0-9]*)$`)
	refSuffix = regexp.MustCompile(`^-([0-9]+)$`)
)

func refParse(h string, size int64, maxRanges int) (kind Kind, ranges []Range, failed bool) {
	h = strings.Trim(h, " \t")
	if h == "" {
		return Ignore, nil, false
	}
	unit, set, ok := strings.Cut(h, "=")
	if !ok || !refToken.MatchString(unit) || !strings.EqualFold(unit, "bytes") || size < 0 {
		return Ignore, nil, true
	}
	specs, empty := 0, false
	for _, e := range strings.Split(set, ",") {
		if e = strings.Trim(e, " \t"); e == "" {
			continue
		}
		if specs++; specs > maxRanges {
			return Ignore, nil, true
		}
		if m := refSuffix.FindStringSubmatch(e); m != nil {
			n, err := strconv.ParseInt(m[1], 10, 64)
			switch {
			case err != nil:
				return Ignore, nil, true
			case n > 0 && size == 0:
				empty = true
			case n > 0:
				n = min(n, size)
				ranges = append(ranges, Range{size - n, n})
			}
			continue
		}
		m := refInt.FindStringSubmatch(e)
		if m == nil {
			return Ignore, nil, true
		}
		first, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return Ignore, nil, true
		}
		last := int64(math.MaxInt64)
		if m[2] != "" {
			if last, err = strconv.ParseInt(m[2], 10, 64); err != nil || last < first {
				return Ignore, nil, true
			}
		}
		if first < size {
			ranges = append(ranges, Range{first, min(last, size-1) - first + 1})
		}
	}
	switch {
	case specs == 0:
		return Ignore, nil, true
	case len(ranges) == 0 && empty:
		return Ignore, nil, false
	case len(ranges) == 0:
		return Unsatisfiable, nil, false
	}
	var total float64 // no overflow to care about; exact enough to decide > 2×size here
	for _, r := range ranges {
		total += float64(r.Length)
	}
	if len(ranges) > 1 && total > 2*float64(size) {
		return Ignore, nil, true
	}
	return Satisfiable, ranges, false
}

// coverage marks the bytes of [0,size) the ranges cover.
func coverage(size int64, ranges []Range) []bool {
	c := make([]bool, size)
	for _, r := range ranges {
		for i := r.Start; i < r.Start+r.Length; i++ {
			c[i] = true
		}
	}
	return c
}

func TestRefParseAgrees(t *testing.T) {
	// The model itself must be right on a few shapes, or the fuzz cross-check proves nothing.
	for _, h := range []string{"bytes=0-99", "bytes=500-599,0-99,50-60", "bytes=-0", "bytes=1-0", "bytes=0-,0-,0-", "items=1-2", "bytes=" + distinct(17), "bytes=-1"} {
		compareWithRef(t, h, 1000, Options{})
		compareWithRef(t, h, 0, Options{})
	}
}

func compareWithRef(t *testing.T, header string, size int64, opt Options) {
	t.Helper()
	maxRanges := opt.MaxRanges
	if maxRanges <= 0 {
		maxRanges = DefaultMaxRanges
	}
	got, err := Parse(header, size, opt)
	kind, ranges, failed := refParse(header, size, maxRanges)
	if got.Kind != kind || (err != nil) != failed {
		t.Fatalf("Parse(%q, %d) = %v, %v; model says %v, failed=%v", header, size, got.Kind, err, kind, failed)
	}
	if kind == Satisfiable && !slices.Equal(coverage(size, got.Ranges), coverage(size, ranges)) {
		t.Fatalf("Parse(%q, %d) = %v; model covers %v", header, size, got.Ranges, ranges)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"bytes=0-99", "bytes=-500", "bytes=500-", "bytes=900-5000", "bytes=5000-", "bytes=-0",
		"bytes=0-99,200-299", "bytes=0-499,400-599", "bytes=0-99,100-199", "bytes=500-599,0-99",
		"bytes=0-0,0-0,0-0", "bytes=0-,0-,0-", "Bytes= 0-1 ,\t3-4,,", "items=0-5", "bytes=1-0",
		"bytes=9223372036854775808-", "bytes=-9223372036854775807", "garbage", "",
		"bytes=" + distinct(17), "bytes=" + repeat("0-0", 40),
	} {
		for _, size := range []int64{0, 1, 1000, math.MaxInt64, -1} {
			f.Add(s, size, 0)
		}
	}
	f.Add("bytes=0-1,5-6", int64(100), 1)
	f.Fuzz(func(t *testing.T, header string, size int64, maxRanges int) {
		opt := Options{MaxRanges: maxRanges % 64}
		res, err := Parse(header, size, opt)
		if size < 0 && res.Kind != Ignore {
			t.Fatalf("Parse(%q, %d) = %v for an unknown length", header, size, res.Kind)
		}
		checkResult(t, header, size, opt, res, err)
		// Cross-check a small size against the model, byte for byte.
		small := size % 4097
		if small < 0 {
			small = -small
		}
		res, err = Parse(header, small, opt)
		checkResult(t, header, small, opt, res, err)
		compareWithRef(t, header, small, opt)
	})
}
