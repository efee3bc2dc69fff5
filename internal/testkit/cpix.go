package testkit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/packager/cpix"
)

// CPIXKey is the KID and key of key period idx for track type typ ("video", "audio") in the
// CPIX documents of LiveCPIX: different per period and per type, the same in every test.
func CPIXKey(idx uint64, typ string) (kid, key [16]byte) {
	h := sha256.Sum256([]byte(fmt.Sprintf("reel live cpix test %s %d", typ, idx)))
	copy(kid[:], h[:16])
	copy(key[:], h[16:])
	return kid, key
}

// UUID spells 16 bytes as a UUID, as CPIX documents and MPDs do.
func UUID(b [16]byte) string {
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// WidevinePssh is the Widevine pssh box LiveCPIX documents give for kid (its data is opaque
// to Reel).
func WidevinePssh(kid [16]byte) []byte {
	p := &mp4.PsshBox{SystemID: mp4.UUID(cpix.Widevine[:]), Data: append([]byte("reel-test-"), kid[:]...)}
	var b bytes.Buffer
	if err := p.Encode(&b); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// LiveCPIX bends the documents of Document into the bad ones tests need; the zero value
// makes a good one.
type LiveCPIX struct {
	KeyBytes int  // length of each key (16 when 0)
	NoAudio  bool // no usage rule for audio
	Timed    bool // periods by start/end, not by index
}

// Document is a CPIX document with key periods indices (period "p<i>", @index i), each with a
// video and an audio key (CPIXKey), Widevine (pssh) and FairPlay (skd:// URI) signalling for
// each key, and usage rules by period and track type.
func (o LiveCPIX) Document(indices ...uint64) string {
	var keys, systems, periods, rules strings.Builder
	for _, i := range indices {
		if o.Timed {
			start := time.Date(2026, 12, 7, 0, 0, int(i)*10, 0, time.UTC)
			fmt.Fprintf(&periods, `<cpix:ContentKeyPeriod id="p%d" start="%s" end="%s"/>`, i, start.Format(time.RFC3339), start.Add(10*time.Second).Format(time.RFC3339))
		} else {
			fmt.Fprintf(&periods, `<cpix:ContentKeyPeriod id="p%d" index="%d"/>`, i, i)
		}
		for _, typ := range []string{"video", "audio"} {
			kid, key := CPIXKey(i, typ)
			value := key[:]
			if o.KeyBytes != 0 {
				value = bytes.Repeat([]byte{7}, o.KeyBytes)
			}
			fmt.Fprintf(&keys, `<cpix:ContentKey kid="%s"><cpix:Data><pskc:Secret><pskc:PlainValue>%s</pskc:PlainValue></pskc:Secret></cpix:Data></cpix:ContentKey>`,
				UUID(kid), base64.StdEncoding.EncodeToString(value))
			fmt.Fprintf(&systems, `<cpix:DRMSystem kid="%s" systemId="%s"><cpix:PSSH>%s</cpix:PSSH></cpix:DRMSystem>`,
				UUID(kid), UUID(cpix.Widevine), base64.StdEncoding.EncodeToString(WidevinePssh(kid)))
			fmt.Fprintf(&systems, `<cpix:DRMSystem kid="%s" systemId="%s"><cpix:URIExtXKey>%s</cpix:URIExtXKey></cpix:DRMSystem>`,
				UUID(kid), UUID(cpix.FairPlay), base64.StdEncoding.EncodeToString([]byte("skd://fairplay.example/"+hex.EncodeToString(kid[:]))))
			if typ == "audio" && o.NoAudio {
				continue
			}
			fmt.Fprintf(&rules, `<cpix:ContentKeyUsageRule kid="%s" intendedTrackType="%s"><cpix:KeyPeriodFilter periodId="p%d"/></cpix:ContentKeyUsageRule>`,
				UUID(kid), strings.ToUpper(typ), i)
		}
	}
	return `<?xml version="1.0" encoding="UTF-8"?>
<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" contentId="live-test" version="2.3">
<cpix:ContentKeyList>` + keys.String() + `</cpix:ContentKeyList>
<cpix:DRMSystemList>` + systems.String() + `</cpix:DRMSystemList>
<cpix:ContentKeyPeriodList>` + periods.String() + `</cpix:ContentKeyPeriodList>
<cpix:ContentKeyUsageRuleList>` + rules.String() + `</cpix:ContentKeyUsageRuleList>
</cpix:CPIX>`
}
