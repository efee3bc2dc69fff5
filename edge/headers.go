package edge

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/reelvideo/reel/edge/cachestatus"
)

// Header rules (config_headers.go; README "Header rules"): fields set, added or removed on the
// request sent upstream (applied by originRequest, upstream_request.go, the one place every
// upstream request is built) and on the response sent to clients (applied by writeHead and
// writeHitHead, respond.go, and httpError, errors.go, on the way out: never stored). A ruling
// carries each side's rules merged field by field (headerSettings) and precomputed
// (headerRules): the constant fields of a hit's head are serialised once per ruling.

// opKind is what a header rule does to a field.
type opKind uint8

const (
	opSet opKind = iota
	opAdd
	opRemove
)

func (k opKind) String() string {
	switch k {
	case opSet:
		return "set"
	case opAdd:
		return "add"
	}
	return "remove"
}

// varKind is a variable of a header value.
type varKind uint8

const (
	varNone        varKind = iota // a literal part
	varClientIP                   // the TCP peer's address
	varHost                       // the request's host as the cache key holds it
	varCacheStatus                // how the cache answered, a Cache-Status token
)

var variables = map[string]varKind{"client_ip": varClientIP, "host": varHost, "cache_status": varCacheStatus}

// part is a literal, or a variable.
type part struct {
	lit string
	v   varKind
}

// template is a header value: lit when constant (parts nil), else its parts.
type template struct {
	lit   string
	parts []part
}

// headerOp is what happens to one field.
type headerOp struct {
	name string // canonical
	raw  string // as configured, for messages
	kind opKind
	vals []template
	// consts are vals when all are constant (else nil), shared by every request: a header map
	// is given them clipped, so that an append to the field copies them.
	consts []string
	// bypassOnly: the op may only be sent upstream on requests that bypass the cache (it
	// comes from a rule with request conditions, or holds a per-client variable).
	bypassOnly bool
}

func (op *headerOp) perClient() bool {
	for _, t := range op.vals {
		for _, p := range t.parts {
			if p.v == varClientIP {
				return true
			}
		}
	}
	return false
}

// headerVars are what variables expand to for one message.
type headerVars struct {
	r  *http.Request
	cs string // the {cache_status} token
}

// appendValue appends t expanded to b. A variable's value never brings a control byte into
// the field (the host and address are checked by the servers; this is the last guard).
func (t *template) appendValue(b []byte, vars *headerVars) []byte {
	if t.parts == nil {
		return append(b, t.lit...)
	}
	for _, p := range t.parts {
		switch p.v {
		case varNone:
			b = append(b, p.lit...)
		case varClientIP:
			if a := clientAddr(vars.r); a.IsValid() {
				b = a.WithZone("").AppendTo(b)
			}
		case varHost:
			b = appendSafe(b, canonicalHost(vars.r.Host, vars.r.TLS != nil))
		case varCacheStatus:
			b = appendSafe(b, vars.cs)
		}
	}
	return b
}

// appendSafe appends s without its control bytes (CR, LF, NUL, tab, DEL and the rest).
func appendSafe(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c != 0x7f {
			b = append(b, c)
		}
	}
	return b
}

// values are op's values for vars.
func (op *headerOp) values(vars *headerVars) []string {
	if op.consts != nil {
		return slices.Clip(op.consts)
	}
	out := make([]string, len(op.vals))
	var buf [128]byte
	for i := range op.vals {
		out[i] = string(op.vals[i].appendValue(buf[:0], vars))
	}
	return out
}

// cacheStatusToken is {cache_status} for a response the cache answered with cs: "hit", or
// the reason it went forward (Cache-Status's fwd).
func cacheStatusToken(cs *cachestatus.Status) string {
	switch {
	case cs.Fwd != "" && cachestatus.IsToken(cs.Fwd):
		return cs.Fwd
	case cs.Fwd != "":
		return cachestatus.FwdMiss
	case cs.Hit:
		return "hit"
	}
	return "none"
}

// headerRules are one side's header rules of a ruling, ready to apply.
type headerRules struct {
	ops []headerOp // one per field name, in name order
	// For the HTTP/1.1 hit head (response side): the set and add fields whose values are all
	// constant, as field lines; the ops with a variable, expanded per response; and the names
	// set or removed, whose stored fields are left out.
	constWire []byte
	varOps    []headerOp
	replaced  []string
}

// newHeaderRules prepares ops (nil for none).
func newHeaderRules(ops []headerOp) *headerRules {
	if len(ops) == 0 {
		return nil
	}
	slices.SortFunc(ops, func(a, b headerOp) int { return strings.Compare(a.name, b.name) })
	hr := &headerRules{ops: ops}
	for i := range ops {
		op := &ops[i]
		if op.kind != opAdd {
			hr.replaced = append(hr.replaced, op.name)
		}
		if op.kind == opRemove {
			continue
		}
		op.consts = make([]string, len(op.vals))
		for j, t := range op.vals {
			if t.parts != nil {
				op.consts = nil
				break
			}
			op.consts[j] = t.lit
		}
		if op.consts == nil {
			hr.varOps = append(hr.varOps, *op)
			continue
		}
		for _, v := range op.consts {
			hr.constWire = appendField(hr.constWire, op.name, v)
		}
	}
	return hr
}

// apply changes h as the rules say.
func (hr *headerRules) apply(h http.Header, vars *headerVars) {
	for i := range hr.ops {
		op := &hr.ops[i]
		switch op.kind {
		case opRemove:
			delete(h, op.name)
		case opSet:
			h[op.name] = op.values(vars)
		case opAdd:
			// Clip: the field's slice may be shared with a stored header.
			h[op.name] = append(slices.Clip(h[op.name]), op.values(vars)...)
		}
	}
}

// appendVarFields appends the fields of the ops with a variable, as field lines.
func (hr *headerRules) appendVarFields(b []byte, vars *headerVars) []byte {
	for i := range hr.varOps {
		op := &hr.varOps[i]
		for j := range op.vals {
			b = append(b, op.name...)
			b = append(b, ": "...)
			b = op.vals[j].appendValue(b, vars)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// filterWire appends to b the field lines of wire whose names the rules don't replace.
func (hr *headerRules) filterWire(b, wire []byte) []byte {
	if len(hr.replaced) == 0 {
		return append(b, wire...)
	}
	for len(wire) > 0 {
		end := strings.Index(string(wire), "\r\n") + 2
		if end < 2 {
			end = len(wire)
		}
		line := wire[:end]
		wire = wire[end:]
		name, _, _ := strings.Cut(string(line), ":")
		if !slices.ContainsFunc(hr.replaced, func(n string) bool { return strings.EqualFold(n, name) }) {
			b = append(b, line...)
		}
	}
	return b
}

// appendStored appends to b the stored fields of a hit head (wire, serialised from stored)
// that the rules don't replace. Stored names are canonical, as the rules' are: a map lookup
// per replaced name tells whether there is anything to leave out, which is rare (an origin's
// X-Powered-By a rule removes): then the lines are filtered, per hit, into b. Nothing is kept
// per object, which would grow every memory object served under rules.
func (hr *headerRules) appendStored(b, wire []byte, stored http.Header) []byte {
	for _, n := range hr.replaced {
		if _, ok := stored[n]; ok {
			return hr.filterWire(b, wire)
		}
	}
	return append(b, wire...)
}

// ruleHeaderOps are one rule's header ops, compiled once (compileRuleHeaders).
type ruleHeaderOps struct {
	req, resp []headerOp
	// requestConds: the rule looks at methods, headers or cookies.
	requestConds bool
}

// compileRuleHeaders compiles each rule's header rules (Rule's check has checked them).
func compileRuleHeaders(rs []Rule) ([]ruleHeaderOps, error) {
	ops := make([]ruleHeaderOps, len(rs))
	for i := range rs {
		r := &rs[i]
		var err error
		if r.RequestHeaders != nil {
			ops[i].req, err = r.RequestHeaders.compile(requestSide)
		}
		if r.ResponseHeaders != nil && err == nil {
			ops[i].resp, err = r.ResponseHeaders.compile(responseSide)
		}
		if err != nil {
			return nil, fmt.Errorf("rules[%d]: %w", i, err)
		}
		m := r.conditions()
		ops[i].requestConds = m.HasRequestConditions()
	}
	return ops, nil
}

// headerSettings merges header rules field by field (resolve.go): each field from the most
// specific matching rule that names it.
type headerSettings struct {
	req, resp []headerOp
}

// take adds the ops of a rule (ops) on fields no more specific rule named.
func (s *headerSettings) take(ops *ruleHeaderOps) {
	for _, op := range ops.req {
		if !slices.ContainsFunc(s.req, func(o headerOp) bool { return o.name == op.name }) {
			op.bypassOnly = ops.requestConds || op.perClient()
			s.req = append(s.req, op)
		}
	}
	for _, op := range ops.resp {
		if !slices.ContainsFunc(s.resp, func(o headerOp) bool { return o.name == op.name }) {
			s.resp = append(s.resp, op)
		}
	}
}

// finish gives the ruling's header rules. A request field that may only go upstream on
// bypassed requests is left out of a ruling that doesn't bypass: a more specific rule turned
// bypass off, and the field — chosen by a request condition or holding the client's address —
// would shape what every client of the key gets.
func (s *headerSettings) finish(bypass bool, first int) (req, resp *headerRules) {
	if !bypass {
		kept := s.req[:0]
		for _, op := range s.req {
			if op.bypassOnly {
				slog.Warn("edge: a request header rule applies only where the cache is bypassed, and a more specific rule caches these requests: the field is not sent",
					"rule", first, "field", op.name)
				continue
			}
			kept = append(kept, op)
		}
		s.req = kept
	}
	return newHeaderRules(s.req), newHeaderRules(s.resp)
}
