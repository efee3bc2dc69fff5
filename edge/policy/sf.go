package policy

import "strconv"

// A minimal RFC 8941 Dictionary parser, enough for RFC 9213 targeted fields
// (CDN-Cache-Control). It validates the whole grammar (a targeted field that fails to parse
// must be ignored, RFC 9213 §2.1) but keeps only what cache directives use: the member's
// bare item kind, Integer value and Boolean value. Parameters and inner-list members are
// checked and dropped.

type sfKind uint8

const (
	sfInteger sfKind = iota + 1
	sfDecimal
	sfString
	sfToken
	sfBytes
	sfBoolean
	sfInnerList
)

type sfValue struct {
	kind sfKind
	num  int64 // sfInteger
	b    bool  // sfBoolean
}

type sfParser struct {
	s string
	i int
}

// parseSFDictionary parses a Dictionary field value (lines already joined with ", ").
// Later duplicates of a key overwrite earlier ones (RFC 8941 §4.2.2).
func parseSFDictionary(s string) (map[string]sfValue, bool) {
	p := &sfParser{s: s}
	p.skipSP()
	dict := map[string]sfValue{}
	for !p.eof() {
		key, ok := p.key()
		if !ok {
			return nil, false
		}
		var v sfValue
		if p.peek() == '=' {
			p.i++
			if v, ok = p.itemOrInnerList(); !ok {
				return nil, false
			}
		} else {
			v = sfValue{kind: sfBoolean, b: true}
			if !p.params() {
				return nil, false
			}
		}
		dict[key] = v
		p.skipOWS()
		if p.eof() {
			return dict, true
		}
		if p.peek() != ',' {
			return nil, false
		}
		p.i++
		p.skipOWS()
		if p.eof() { // trailing comma
			return nil, false
		}
	}
	return dict, true
}

func (p *sfParser) eof() bool { return p.i >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}

func (p *sfParser) skipSP() {
	for !p.eof() && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }

func (p *sfParser) key() (string, bool) {
	start := p.i
	if c := p.peek(); !isLCAlpha(c) && c != '*' {
		return "", false
	}
	p.i++
	for !p.eof() {
		c := p.s[p.i]
		if !isLCAlpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '.' && c != '*' {
			break
		}
		p.i++
	}
	return p.s[start:p.i], true
}

func (p *sfParser) itemOrInnerList() (sfValue, bool) {
	if p.peek() != '(' {
		v, ok := p.bareItem()
		return v, ok && p.params()
	}
	p.i++
	for {
		p.skipSP()
		if p.eof() {
			return sfValue{}, false
		}
		if p.peek() == ')' {
			p.i++
			return sfValue{kind: sfInnerList}, p.params()
		}
		if _, ok := p.bareItem(); !ok || !p.params() {
			return sfValue{}, false
		}
		if c := p.peek(); c != ' ' && c != ')' {
			return sfValue{}, false
		}
	}
}

func (p *sfParser) params() bool {
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		if _, ok := p.key(); !ok {
			return false
		}
		if p.peek() == '=' {
			p.i++
			if _, ok := p.bareItem(); !ok {
				return false
			}
		}
	}
	return true
}

func (p *sfParser) bareItem() (sfValue, bool) {
	c := p.peek()
	switch {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return p.str()
	case c == '*' || isAlpha(c):
		return p.token()
	case c == ':':
		return p.bytes()
	case c == '?':
		return p.boolean()
	}
	return sfValue{}, false
}

func (p *sfParser) number() (sfValue, bool) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	if !isDigit(p.peek()) {
		return sfValue{}, false
	}
	digits, dot := 0, -1
	for !p.eof() {
		c := p.s[p.i]
		if isDigit(c) {
			digits++
		} else if c == '.' && dot < 0 {
			if digits > 12 {
				return sfValue{}, false
			}
			dot = digits
		} else {
			break
		}
		p.i++
		if digits > 15 {
			return sfValue{}, false
		}
	}
	if dot >= 0 {
		frac := digits - dot
		if frac < 1 || frac > 3 {
			return sfValue{}, false
		}
		return sfValue{kind: sfDecimal}, true
	}
	n, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
	if err != nil {
		return sfValue{}, false
	}
	return sfValue{kind: sfInteger, num: n}, true
}

func (p *sfParser) str() (sfValue, bool) {
	p.i++ // opening quote
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if p.eof() || (p.s[p.i] != '"' && p.s[p.i] != '\\') {
				return sfValue{}, false
			}
			p.i++
		case c == '"':
			return sfValue{kind: sfString}, true
		case c < 0x20 || c > 0x7e:
			return sfValue{}, false
		}
	}
	return sfValue{}, false
}

func isTchar(c byte) bool {
	if isAlpha(c) || isDigit(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func (p *sfParser) token() (sfValue, bool) {
	p.i++ // first char already checked
	for !p.eof() && (isTchar(p.s[p.i]) || p.s[p.i] == ':' || p.s[p.i] == '/') {
		p.i++
	}
	return sfValue{kind: sfToken}, true
}

func (p *sfParser) bytes() (sfValue, bool) {
	p.i++
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		if c == ':' {
			return sfValue{kind: sfBytes}, true
		}
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '/' && c != '=' {
			return sfValue{}, false
		}
	}
	return sfValue{}, false
}

func (p *sfParser) boolean() (sfValue, bool) {
	p.i++
	switch p.peek() {
	case '1':
		p.i++
		return sfValue{kind: sfBoolean, b: true}, true
	case '0':
		p.i++
		return sfValue{kind: sfBoolean, b: false}, true
	}
	return sfValue{}, false
}
