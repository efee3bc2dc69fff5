// Package cpix reads DASH-IF CPIX 2.3 documents (Content Protection Information Exchange
// Format, namespace urn:dashif:org:cpix): the content keys a key server hands out, the DRM
// systems' signalling for each key, key periods and the usage rules that say which key
// protects which track. It knows nothing of packaging: packager and packager/live ask it for
// the key of a track (KeyFor) and for the signalling of a key (Systems).
//
// Parsing is strict: anything this package cannot honour (keys encrypted for a recipient with
// DeliveryData, schemes other than cenc and cbcs, filters it cannot evaluate) is an error that
// names it, rather than content protected in a way the document did not ask for.
package cpix

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
)

// Namespace is the CPIX XML namespace; pskcNamespace holds the key values (RFC 6030).
const (
	Namespace     = "urn:dashif:org:cpix"
	pskcNamespace = "urn:ietf:params:xml:ns:keyprov:pskc"
)

// MaxSize bounds a CPIX document, read from a file or a key server: real ones are a few KiB.
const MaxSize = 4 << 20

// KID is a 16-byte key ID, written as a UUID in CPIX and DASH.
type KID [16]byte

// String is the UUID form, 8-4-4-4-12 lower-case hex.
func (k KID) String() string {
	h := hex.EncodeToString(k[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// parseUUID reads the 8-4-4-4-12 form (any case).
func parseUUID(s string) (KID, error) {
	var k KID
	parts := strings.Split(s, "-")
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 || len(parts[3]) != 4 || len(parts[4]) != 12 {
		return k, fmt.Errorf("%q is not a UUID", s)
	}
	b, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil {
		return k, fmt.Errorf("%q is not a UUID", s)
	}
	copy(k[:], b)
	return k, nil
}

// Well-known DRM system IDs (dashif.org/identifiers/content_protection).
var (
	Widevine  = mustUUID("edef8ba9-79d6-4ace-a3c8-27dcd51d21ed")
	PlayReady = mustUUID("9a04f079-9840-4286-ab92-e65be0885f95")
	FairPlay  = mustUUID("94ce86fb-07ff-4f43-adb8-93d2fa968ca2")
	ClearKey  = mustUUID("e2719d58-a985-b3c9-781a-b030af78d30e")
	W3CCommon = mustUUID("1077efec-c0b2-4d02-ace3-3c1e52e2fb4b")
)

func mustUUID(s string) KID {
	k, err := parseUUID(s)
	if err != nil {
		panic(err)
	}
	return k
}

// Document is a parsed, validated CPIX document.
type Document struct {
	ContentID string
	Version   string
	Keys      []ContentKey
	Systems   []DRMSystem
	Periods   []Period
	Rules     []UsageRule
}

// ContentKey is one content key. Key is secret: never log or publish it.
type ContentKey struct {
	KID KID
	Key []byte // 16 bytes, AES-128
	// ExplicitIV, when set, is the IV to encrypt with (8 or 16 bytes).
	ExplicitIV []byte
	// Scheme is commonEncryptionScheme: "cenc", "cbcs", or "" when the document leaves it to
	// the packager.
	Scheme string
}

// DRMSystem is one DRM system's signalling for one key. Every field but the IDs is optional.
type DRMSystem struct {
	SystemID KID
	KID      KID
	// PSSH is a whole pssh box (ISO/IEC 23001-7 §8.1), for init segments, cenc:pssh and the
	// Widevine and PlayReady HLS key URIs.
	PSSH []byte
	// ContentProtectionData is XML to put, as given, inside the system's DASH
	// ContentProtection element.
	ContentProtectionData string
	// URIExtXKey is the URI of the system's HLS EXT-X-KEY (FairPlay's skd://…).
	URIExtXKey string
	// HLSMaster and HLSMedia are the system's HLS signalling written verbatim: EXT-X-SESSION-KEY
	// lines for the master playlist, EXT-X-KEY lines for media playlists.
	HLSMaster, HLSMedia string
}

// Period is a content key period (key rotation). Either Index is set or Start and End are.
type Period struct {
	ID         string
	Index      *uint64
	Start, End time.Time
}

// UsageRule says which key protects which tracks: a track matches when it passes every kind of
// filter the rule has (any one of several filters of the same kind).
type UsageRule struct {
	KID               KID
	IntendedTrackType string
	// PeriodIDs are the KeyPeriodFilters' periodIds: the rule holds only in those periods.
	PeriodIDs []string
	Video     []VideoFilter
	Audio     []AudioFilter
}

// VideoFilter matches video tracks, optionally by picture size in pixels (width × height).
type VideoFilter struct{ MinPixels, MaxPixels uint64 } // 0: no bound

// AudioFilter matches audio tracks, optionally by channel count.
type AudioFilter struct{ MinChannels, MaxChannels uint64 } // 0: no bound

// The XML shapes. Unknown elements are ignored except those whose meaning would change what
// gets encrypted or how (DeliveryData, EncryptedValue, other filters): those are refused.
type (
	xmlDoc struct {
		XMLName   xml.Name `xml:"urn:dashif:org:cpix CPIX"`
		ContentID string   `xml:"contentId,attr"`
		Version   string   `xml:"version,attr"`
		Delivery  *struct {
			Items []struct{} `xml:"urn:dashif:org:cpix DeliveryData"`
		} `xml:"urn:dashif:org:cpix DeliveryDataList"`
		Keys    []xmlKey    `xml:"urn:dashif:org:cpix ContentKeyList>ContentKey"`
		Systems []xmlSystem `xml:"urn:dashif:org:cpix DRMSystemList>DRMSystem"`
		Periods []xmlPeriod `xml:"urn:dashif:org:cpix ContentKeyPeriodList>ContentKeyPeriod"`
		Rules   []xmlRule   `xml:"urn:dashif:org:cpix ContentKeyUsageRuleList>ContentKeyUsageRule"`
	}
	xmlKey struct {
		KID        string `xml:"kid,attr"`
		ExplicitIV string `xml:"explicitIV,attr"`
		Scheme     string `xml:"commonEncryptionScheme,attr"`
		DependsOn  string `xml:"dependsOnKey,attr"`
		Data       *struct {
			Secret *struct {
				Plain     *string   `xml:"urn:ietf:params:xml:ns:keyprov:pskc PlainValue"`
				Encrypted *struct{} `xml:"urn:ietf:params:xml:ns:keyprov:pskc EncryptedValue"`
			} `xml:"urn:ietf:params:xml:ns:keyprov:pskc Secret"`
		} `xml:"urn:dashif:org:cpix Data"`
	}
	xmlSystem struct {
		SystemID string    `xml:"systemId,attr"`
		KID      string    `xml:"kid,attr"`
		PSSH     *string   `xml:"urn:dashif:org:cpix PSSH"`
		CPData   *string   `xml:"urn:dashif:org:cpix ContentProtectionData"`
		URIXKey  *string   `xml:"urn:dashif:org:cpix URIExtXKey"`
		HLS      []xmlHLS  `xml:"urn:dashif:org:cpix HLSSignalingData"`
		Smooth   *struct{} `xml:"urn:dashif:org:cpix SmoothStreamingProtectionHeaderData"`
	}
	xmlHLS struct {
		Playlist string `xml:"playlist,attr"`
		Value    string `xml:",chardata"`
	}
	xmlPeriod struct {
		ID    string `xml:"id,attr"`
		Index string `xml:"index,attr"`
		Start string `xml:"start,attr"`
		End   string `xml:"end,attr"`
	}
	xmlRule struct {
		KID     string       `xml:"kid,attr"`
		Type    string       `xml:"intendedTrackType,attr"`
		Periods []xmlPFilter `xml:"urn:dashif:org:cpix KeyPeriodFilter"`
		Video   []xmlVFilter `xml:"urn:dashif:org:cpix VideoFilter"`
		Audio   []xmlAFilter `xml:"urn:dashif:org:cpix AudioFilter"`
		Label   []struct{}   `xml:"urn:dashif:org:cpix LabelFilter"`
		Bitrate []struct{}   `xml:"urn:dashif:org:cpix BitrateFilter"`
	}
	xmlPFilter struct {
		PeriodID string `xml:"periodId,attr"`
	}
	xmlVFilter struct {
		MinPixels string `xml:"minPixels,attr"`
		MaxPixels string `xml:"maxPixels,attr"`
		HDR       string `xml:"hdr,attr"`
		WCG       string `xml:"wcg,attr"`
		MinFPS    string `xml:"minFps,attr"`
		MaxFPS    string `xml:"maxFps,attr"`
	}
	xmlAFilter struct {
		MinChannels string `xml:"minChannels,attr"`
		MaxChannels string `xml:"maxChannels,attr"`
	}
)

// Parse reads and validates a CPIX document. Its errors say what is wrong and where (the
// element and its kid), never a key's value.
func Parse(r io.Reader) (*Document, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("larger than %d MiB", MaxSize>>20)
	}
	var x xmlDoc
	if err := xml.Unmarshal(data, &x); err != nil {
		var unexpected xml.UnmarshalError
		if errors.As(err, &unexpected) || strings.Contains(err.Error(), "expected element") {
			return nil, fmt.Errorf("not a CPIX document (want a CPIX element in namespace %s): %w", Namespace, err)
		}
		return nil, fmt.Errorf("malformed XML: %w", err)
	}
	d := &Document{ContentID: x.ContentID, Version: x.Version}
	if x.Delivery != nil && len(x.Delivery.Items) > 0 {
		return nil, errors.New("DeliveryDataList: content keys encrypted for a recipient are not supported (ask the key server for plain keys over HTTPS)")
	}
	if len(x.Keys) == 0 {
		return nil, errors.New("no ContentKey in ContentKeyList")
	}
	seen := map[KID]bool{}
	for i, xk := range x.Keys {
		k, err := xk.parse()
		if err != nil {
			return nil, fmt.Errorf("ContentKey %d: %w", i+1, err)
		}
		if seen[k.KID] {
			return nil, fmt.Errorf("ContentKey %s: kid given twice", k.KID)
		}
		seen[k.KID] = true
		d.Keys = append(d.Keys, k)
	}
	pair := map[[2]KID]bool{}
	for i, xs := range x.Systems {
		s, err := xs.parse()
		if err != nil {
			return nil, fmt.Errorf("DRMSystem %d: %w", i+1, err)
		}
		if !seen[s.KID] {
			return nil, fmt.Errorf("DRMSystem %s: kid %s is not a ContentKey of the document", s.SystemID, s.KID)
		}
		if pair[[2]KID{s.SystemID, s.KID}] {
			return nil, fmt.Errorf("DRMSystem %s: given twice for kid %s", s.SystemID, s.KID)
		}
		pair[[2]KID{s.SystemID, s.KID}] = true
		d.Systems = append(d.Systems, s)
	}
	periods := map[string]bool{}
	for i, xp := range x.Periods {
		p, err := xp.parse()
		if err != nil {
			return nil, fmt.Errorf("ContentKeyPeriod %d: %w", i+1, err)
		}
		if periods[p.ID] {
			return nil, fmt.Errorf("ContentKeyPeriod %q: id given twice", p.ID)
		}
		periods[p.ID] = true
		d.Periods = append(d.Periods, p)
	}
	for i, xr := range x.Rules {
		r, err := xr.parse()
		if err != nil {
			return nil, fmt.Errorf("ContentKeyUsageRule %d: %w", i+1, err)
		}
		if !seen[r.KID] {
			return nil, fmt.Errorf("ContentKeyUsageRule %d: kid %s is not a ContentKey of the document", i+1, r.KID)
		}
		for _, id := range r.PeriodIDs {
			if !periods[id] {
				return nil, fmt.Errorf("ContentKeyUsageRule %d: KeyPeriodFilter names period %q, which is not in ContentKeyPeriodList", i+1, id)
			}
		}
		d.Rules = append(d.Rules, r)
	}
	return d, nil
}

// b64 decodes a base64 element or attribute, with the line breaks XML pretty-printing leaves.
func b64(what, s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: bad base64: %w", what, err)
	}
	return b, nil
}

func (xk xmlKey) parse() (ContentKey, error) {
	var k ContentKey
	kid, err := parseUUID(xk.KID)
	if err != nil {
		return k, fmt.Errorf("kid: %w", err)
	}
	k.KID = kid
	fail := func(format string, a ...any) (ContentKey, error) {
		return k, fmt.Errorf("kid %s: "+format, append([]any{kid}, a...)...)
	}
	if xk.DependsOn != "" {
		return fail("dependsOnKey (key hierarchies) is not supported")
	}
	switch xk.Scheme {
	case "", "cenc", "cbcs":
		k.Scheme = xk.Scheme
	case "cens", "cbc1":
		return fail("commonEncryptionScheme %q is not supported (only cenc and cbcs)", xk.Scheme)
	default:
		return fail("unknown commonEncryptionScheme %q (want cenc or cbcs)", xk.Scheme)
	}
	if xk.ExplicitIV != "" {
		if k.ExplicitIV, err = b64("explicitIV", xk.ExplicitIV); err != nil {
			return fail("%w", err)
		}
		if n := len(k.ExplicitIV); n != 8 && n != 16 {
			return fail("explicitIV is %d bytes, want 16 (or 8)", n)
		}
	}
	switch {
	case xk.Data == nil || xk.Data.Secret == nil:
		return fail("no Data/Secret: a key without its value cannot encrypt")
	case xk.Data.Secret.Encrypted != nil:
		return fail("an encrypted key (EncryptedValue, with DeliveryData) is not supported")
	case xk.Data.Secret.Plain == nil:
		return fail("no PlainValue in Data/Secret")
	}
	if k.Key, err = b64("PlainValue", *xk.Data.Secret.Plain); err != nil {
		return fail("%w", err)
	}
	if len(k.Key) != 16 {
		return fail("key is %d bytes, want 16", len(k.Key))
	}
	return k, nil
}

func (xs xmlSystem) parse() (DRMSystem, error) {
	var s DRMSystem
	var err error
	if s.SystemID, err = parseUUID(xs.SystemID); err != nil {
		return s, fmt.Errorf("systemId: %w", err)
	}
	if s.KID, err = parseUUID(xs.KID); err != nil {
		return s, fmt.Errorf("systemId %s: kid: %w", s.SystemID, err)
	}
	fail := func(format string, a ...any) (DRMSystem, error) {
		return s, fmt.Errorf("systemId %s, kid %s: "+format, append([]any{s.SystemID, s.KID}, a...)...)
	}
	if xs.PSSH != nil {
		if s.PSSH, err = b64("PSSH", *xs.PSSH); err != nil {
			return fail("%w", err)
		}
		if err := checkPSSH(s.PSSH, s.SystemID); err != nil {
			return fail("PSSH: %w", err)
		}
	}
	if xs.CPData != nil {
		b, err := b64("ContentProtectionData", *xs.CPData)
		if err != nil {
			return fail("%w", err)
		}
		if err := checkXMLFragment(b); err != nil {
			return fail("ContentProtectionData: %w", err)
		}
		s.ContentProtectionData = strings.TrimSpace(string(b))
	}
	if xs.URIXKey != nil {
		b, err := b64("URIExtXKey", *xs.URIXKey)
		if err != nil {
			return fail("%w", err)
		}
		if s.URIExtXKey = strings.TrimSpace(string(b)); strings.ContainsAny(s.URIExtXKey, "\"\r\n") || s.URIExtXKey == "" {
			// An HLS quoted-string cannot hold these (RFC 8216 §4.2).
			return fail("URIExtXKey is empty or holds a double quote or a line break")
		}
	}
	for _, h := range xs.HLS {
		b, err := b64("HLSSignalingData", h.Value)
		if err != nil {
			return fail("%w", err)
		}
		tag := "#EXT-X-KEY:"
		target := &s.HLSMedia
		switch h.Playlist {
		case "media", "":
		case "master":
			tag, target = "#EXT-X-SESSION-KEY:", &s.HLSMaster
		default:
			return fail("HLSSignalingData playlist %q: want master or media", h.Playlist)
		}
		if *target != "" {
			return fail("HLSSignalingData for the %s playlist given twice", strings.TrimSuffix(tag[7:], ":"))
		}
		lines, err := hlsLines(string(b), tag)
		if err != nil {
			return fail("HLSSignalingData (%s playlist): %w", cmpOr(h.Playlist, "media"), err)
		}
		*target = lines
	}
	return s, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// hlsLines checks that s holds only tag lines (what goes verbatim into a playlist must not
// add segments, change timing or break the playlist) and returns them, one per line.
func hlsLines(s, tag string) (string, error) {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if !strings.HasPrefix(l, tag) || len(l) == len(tag) {
			return "", fmt.Errorf("line %q: only %s lines may go there", truncate(l), strings.TrimSuffix(tag, ":"))
		}
		if strings.ContainsAny(l, "\r\x00") {
			return "", fmt.Errorf("line %q holds a control character", truncate(l))
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return "", errors.New("empty")
	}
	return strings.Join(out, "\n"), nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// checkPSSH checks that b is exactly one pssh box of system.
func checkPSSH(b []byte, system KID) (err error) {
	defer func() {
		// mp4ff panics on some corrupt boxes (DESIGN.md).
		if r := recover(); r != nil {
			err = fmt.Errorf("not a pssh box: %v", r)
		}
	}()
	box, err := mp4.DecodeBox(0, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not a pssh box: %w", err)
	}
	p, ok := box.(*mp4.PsshBox)
	if !ok {
		return fmt.Errorf("a %q box, want pssh", box.Type())
	}
	if int(p.Size()) != len(b) {
		return fmt.Errorf("box of %d bytes in %d", p.Size(), len(b))
	}
	if !bytes.Equal(p.SystemID, system[:]) {
		return fmt.Errorf("box of system %s, not of its DRMSystem", KID(p.SystemID))
	}
	return nil
}

// checkXMLFragment checks that b is well-formed XML: elements (and text) that can stand inside
// a ContentProtection element, with no prefix left unbound (an unbound prefix would break the
// MPD it goes into).
func checkXMLFragment(b []byte) error {
	d := xml.NewDecoder(io.MultiReader(strings.NewReader("<x>"), bytes.NewReader(b), strings.NewReader("</x>")))
	d.Strict = true
	elements := 0
	for depth := 0; ; {
		tok, err := d.Token() // Token, not RawToken: it checks that end tags match

		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("not well-formed XML: %w", err)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 {
				elements++
			}
		case xml.EndElement:
			depth--
		case xml.ProcInst:
			return errors.New("a processing instruction or XML declaration cannot go inside an MPD element")
		case xml.Directive:
			return errors.New("a directive (DOCTYPE) cannot go inside an MPD element")
		}
	}
	if elements == 0 {
		return errors.New("no XML element")
	}
	// Namespaces: decode again with namespace processing; an unbound prefix keeps it as the
	// Space of the name, which is then not a URI the fragment declared.
	d = xml.NewDecoder(io.MultiReader(strings.NewReader("<x>"), bytes.NewReader(b), strings.NewReader("</x>")))
	declared := map[string]bool{}
	for {
		tok, err := d.RawToken()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Space == "xmlns" {
					declared[a.Name.Local] = true
				}
			}
			names := []xml.Name{se.Name}
			for _, a := range se.Attr {
				names = append(names, a.Name)
			}
			for _, n := range names {
				if n.Space != "" && n.Space != "xmlns" && n.Space != "xml" && !declared[n.Space] {
					return fmt.Errorf("prefix %q is not declared in the fragment", n.Space)
				}
			}
		}
	}
	return nil
}

func (xp xmlPeriod) parse() (Period, error) {
	p := Period{ID: xp.ID}
	if p.ID == "" {
		return p, errors.New("no id")
	}
	if xp.Index != "" {
		var n uint64
		if _, err := fmt.Sscan(xp.Index, &n); err != nil || fmt.Sprint(n) != xp.Index {
			return p, fmt.Errorf("%q: index %q is not a whole number", p.ID, xp.Index)
		}
		p.Index = &n
		if xp.Start != "" || xp.End != "" {
			return p, fmt.Errorf("%q: index and start/end both given", p.ID)
		}
		return p, nil
	}
	if xp.Start == "" || xp.End == "" {
		return p, fmt.Errorf("%q: neither index nor start and end", p.ID)
	}
	var err error
	if p.Start, err = time.Parse(time.RFC3339Nano, xp.Start); err != nil {
		return p, fmt.Errorf("%q: start %q is not an xs:dateTime with a zone", p.ID, xp.Start)
	}
	if p.End, err = time.Parse(time.RFC3339Nano, xp.End); err != nil {
		return p, fmt.Errorf("%q: end %q is not an xs:dateTime with a zone", p.ID, xp.End)
	}
	if !p.End.After(p.Start) {
		return p, fmt.Errorf("%q: end is not after start", p.ID)
	}
	return p, nil
}

func (xr xmlRule) parse() (UsageRule, error) {
	var r UsageRule
	var err error
	if r.KID, err = parseUUID(xr.KID); err != nil {
		return r, fmt.Errorf("kid: %w", err)
	}
	r.IntendedTrackType = xr.Type
	switch {
	case len(xr.Label) > 0:
		return r, errors.New("LabelFilter is not supported")
	case len(xr.Bitrate) > 0:
		return r, errors.New("BitrateFilter is not supported (bit rates are known only after packaging)")
	}
	for _, f := range xr.Periods {
		if f.PeriodID == "" {
			return r, errors.New("KeyPeriodFilter without periodId")
		}
		r.PeriodIDs = append(r.PeriodIDs, f.PeriodID)
	}
	for _, f := range xr.Video {
		var v VideoFilter
		switch {
		case f.HDR == "true" || f.WCG == "true":
			return r, errors.New("VideoFilter with hdr or wcg is not supported")
		case f.MinFPS != "" || f.MaxFPS != "":
			return r, errors.New("VideoFilter with minFps or maxFps is not supported")
		}
		if v.MinPixels, err = uintAttr("minPixels", f.MinPixels); err != nil {
			return r, err
		}
		if v.MaxPixels, err = uintAttr("maxPixels", f.MaxPixels); err != nil {
			return r, err
		}
		r.Video = append(r.Video, v)
	}
	for _, f := range xr.Audio {
		var a AudioFilter
		if a.MinChannels, err = uintAttr("minChannels", f.MinChannels); err != nil {
			return r, err
		}
		if a.MaxChannels, err = uintAttr("maxChannels", f.MaxChannels); err != nil {
			return r, err
		}
		r.Audio = append(r.Audio, a)
	}
	return r, nil
}

func uintAttr(name, s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	var n uint64
	if _, err := fmt.Sscan(s, &n); err != nil || fmt.Sprint(n) != s {
		return 0, fmt.Errorf("%s %q is not a whole number", name, s)
	}
	return n, nil
}
