package policy

import (
	"strings"
	"time"
)

// parseHTTPDate reads an HTTP-date (RFC 9110 §5.6.7) in exactly one of its three forms,
// which recipients MUST accept:
//
//	IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT
//	rfc850-date  Sunday, 06-Nov-94 08:49:37 GMT
//	asctime-date Sun Nov  6 08:49:37 1994
//
// and nothing else: names are case-sensitive (%s in the grammar), separators are single
// spaces, hour, minute, second and day are two digits (asctime's day may be SP DIGIT), the
// zone is "GMT", and the date must exist. net/http's ParseTime also takes one-digit hours,
// runs of spaces and upper-case names, yet not lower-case ones; a cache reading Expires is
// better off strict, since RFC 9111 §5.3 makes an invalid Expires "already expired", an
// invalid Last-Modified only costs the heuristic, and an invalid Date is replaced by the
// time of receipt. A second of 60 (a leap second, allowed by the grammar's comment) is read
// as the next minute. The day name is not checked against the date: no rule asks for it.
// nowYear places a two-digit rfc850 year (see rfc850Year).
func parseHTTPDate(s string, nowYear int) (time.Time, bool) {
	switch {
	case len(s) > 3 && s[3] == ',':
		return parseIMFFixdate(s)
	case strings.IndexByte(s, ',') >= 0:
		return parseRFC850(s, nowYear)
	default:
		return parseAsctime(s)
	}
}

var (
	dayNames     = []string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
	longDayNames = []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
	monthNames   = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

// parseIMFFixdate: day-name "," SP 2DIGIT SP month SP 4DIGIT SP time-of-day SP "GMT".
func parseIMFFixdate(s string) (time.Time, bool) {
	if len(s) != len("Sun, 06 Nov 1994 08:49:37 GMT") || !oneOf(s[:3], dayNames) || s[3:5] != ", " ||
		s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[25:] != " GMT" {
		return time.Time{}, false
	}
	day, ok1 := digits(s[5:7])
	year, ok2 := digits(s[12:16])
	return build(year, s[8:11], day, s[17:25], ok1 && ok2)
}

// parseRFC850: day-name-l "," SP 2DIGIT "-" month "-" 2DIGIT SP time-of-day SP "GMT".
func parseRFC850(s string, nowYear int) (time.Time, bool) {
	name, rest, _ := strings.Cut(s, ",")
	if !oneOf(name, longDayNames) || len(rest) != len(" 06-Nov-94 08:49:37 GMT") || rest[0] != ' ' ||
		rest[3] != '-' || rest[7] != '-' || rest[10] != ' ' || rest[19:] != " GMT" {
		return time.Time{}, false
	}
	day, ok1 := digits(rest[1:3])
	yy, ok2 := digits(rest[8:10])
	return build(rfc850Year(yy, nowYear), rest[4:7], day, rest[11:19], ok1 && ok2)
}

// rfc850Year: RFC 9110 §5.6.7 — a two-digit year that would be more than 50 years in the
// future is the most recent past year with those digits (a fixed pivot, like Go's 69,
// drifts: in 2026 it reads "70" as 1970 where the rule says 2070).
func rfc850Year(yy, nowYear int) int {
	y := nowYear - nowYear%100 + yy
	if y > nowYear+50 {
		y -= 100
	}
	return y
}

// parseAsctime: day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time-of-day SP 4DIGIT.
func parseAsctime(s string) (time.Time, bool) {
	if len(s) != len("Sun Nov  6 08:49:37 1994") || !oneOf(s[:3], dayNames) || s[3] != ' ' || s[7] != ' ' ||
		s[10] != ' ' || s[19] != ' ' {
		return time.Time{}, false
	}
	d := s[8:10]
	if d[0] == ' ' {
		d = d[1:]
	}
	day, ok1 := digits(d)
	year, ok2 := digits(s[20:24])
	return build(year, s[4:7], day, s[11:19], ok1 && ok2)
}

// build checks month and time-of-day (2DIGIT ":" 2DIGIT ":" 2DIGIT, 00:00:00–23:59:60) and
// that the day exists in that month.
func build(year int, month string, day int, tod string, ok bool) (time.Time, bool) {
	m := index(month, monthNames)
	if !ok || m < 0 || tod[2] != ':' || tod[5] != ':' {
		return time.Time{}, false
	}
	hh, ok1 := digits(tod[0:2])
	mm, ok2 := digits(tod[3:5])
	ss, ok3 := digits(tod[6:8])
	if !ok1 || !ok2 || !ok3 || hh > 23 || mm > 59 || ss > 60 || day < 1 {
		return time.Time{}, false
	}
	if first := time.Date(year, time.Month(m+1), 1, 0, 0, 0, 0, time.UTC); day > first.AddDate(0, 1, -1).Day() {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(m+1), day, hh, mm, ss, 0, time.UTC), true
}

// digits reads a fixed-width run of ASCII digits (no sign, no space).
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, s != ""
}

func oneOf(s string, names []string) bool { return index(s, names) >= 0 }

func index(s string, names []string) int {
	for i, n := range names {
		if s == n {
			return i
		}
	}
	return -1
}
