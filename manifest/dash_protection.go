package manifest

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// DASH scheme URIs for Common Encryption signalling (ISO/IEC 23009-1 §5.8.5.2, DASH-IF IOP).
const (
	mp4ProtectionScheme = "urn:mpeg:dash:mp4protection:2011"
	clearKeyScheme      = "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"
	// cpDataMarker stands, as a cenc:pssh's text, where a CPIX's ContentProtectionData goes:
	// dash-mpd has no field for arbitrary XML, so the MPD is written with the marker and the
	// data replaces it (see insertCPData). No base64 pssh holds a '-'.
	cpDataMarker = "reel-content-protection-data-"
)

// contentProtections signals pr in an AdaptationSet or a Representation: the generic
// mp4protection descriptor with the scheme and the default KID (so a player can pick the key
// before it loads an init segment); one element per DRM system of the key with its
// ContentProtectionData, else its cenc:pssh; and ClearKey, the one key system that needs no
// DRM-specific data, with its license URL when there is one. ContentProtectionData is queued in
// cpData and referenced by a marker. Nil for a clear track.
func contentProtections(pr *Protection, cpData *[]string) []*mpd.ContentProtectionType {
	if pr == nil {
		return nil
	}
	generic := mpd.NewContentProtection()
	generic.SchemeIdUri = mp4ProtectionScheme
	generic.Value = pr.Scheme
	generic.DefaultKID = pr.KIDUUID()
	out := []*mpd.ContentProtectionType{generic}
	var clearKey *mpd.ContentProtectionType
	for _, s := range pr.Systems {
		cp := mpd.NewContentProtection()
		cp.SchemeIdUri = mpd.AnyURI("urn:uuid:" + uuid(s.ID))
		switch {
		case s.ContentProtectionData != "":
			cp.Pssh = &mpd.PsshType{Value: fmt.Sprintf("%s%d", cpDataMarker, len(*cpData))}
			*cpData = append(*cpData, s.ContentProtectionData)
		case len(s.PSSH) > 0:
			cp.Pssh = &mpd.PsshType{Value: base64.StdEncoding.EncodeToString(s.PSSH)}
		}
		switch s.ID {
		case SystemPlayReady:
			cp.Value = "MSPR 2.0"
		case SystemClearKey:
			clearKey = cp
			continue // written last, as without a CPIX
		}
		out = append(out, cp)
	}
	if clearKey == nil {
		clearKey = mpd.NewContentProtection()
		clearKey.SchemeIdUri = clearKeyScheme
	}
	clearKey.Value = "ClearKey1.0"
	// A CPIX's own ClearKey ContentProtectionData is taken as it is (it may name its license
	// server); otherwise the license URL given goes in.
	if pr.ClearKeyLicense != "" && (clearKey.Pssh == nil || !strings.HasPrefix(clearKey.Pssh.Value, cpDataMarker)) {
		clearKey.LaURL = &mpd.LaURLType{LicenseType: "EME-1.0", Value: mpd.AnyURI(pr.ClearKeyLicense)}
	}
	return append(out, clearKey)
}

// insertCPData puts each ContentProtectionData where its marker is.
func insertCPData(mpdXML string, cpData []string) (string, error) {
	for i, data := range cpData {
		// dash-mpd writes the element with its own namespace declaration.
		marker := regexp.MustCompile(`<cenc:pssh[^>]*>` + cpDataMarker + strconv.Itoa(i) + `</cenc:pssh>`)
		if !marker.MatchString(mpdXML) {
			return "", fmt.Errorf("ContentProtectionData %d: marker not found in the written MPD", i)
		}
		mpdXML = marker.ReplaceAllLiteralString(mpdXML, data)
	}
	return mpdXML, nil
}

// setProtection signals the protection of tracks, the Representations of as: once on the set
// when they share it (the usual case), else on each Representation.
func (p *Presentation) setProtection(as *mpd.AdaptationSetType, tracks []*Track, cpData *[]string) {
	shared := true
	for _, t := range tracks[1:] {
		shared = shared && reflect.DeepEqual(p.ProtectionOf(t), p.ProtectionOf(tracks[0]))
	}
	if shared {
		as.ContentProtections = contentProtections(p.ProtectionOf(tracks[0]), cpData)
		return
	}
	for i, t := range tracks {
		as.Representations[i].ContentProtections = contentProtections(p.ProtectionOf(t), cpData)
	}
}
