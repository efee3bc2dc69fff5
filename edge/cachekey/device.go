package cachekey

import "strings"

// DeviceClass is the coarse kind of device a request comes from, told from its User-Agent by
// Classify: what a cache can key on instead of the User-Agent itself, which has thousands of
// values for three or so layouts.
type DeviceClass uint8

const (
	Desktop DeviceClass = iota // the default: desktops, laptops, smart TVs, bots, unknown clients
	Mobile                     // phones
	Tablet                     // tablets and e-readers
)

// String is the class's name: "desktop", "mobile" or "tablet".
func (c DeviceClass) String() string {
	switch c {
	case Mobile:
		return "mobile"
	case Tablet:
		return "tablet"
	}
	return "desktop"
}

// UserAgent is the User-Agent a proxy sends upstream for requests of class c when the class,
// not the User-Agent, is in the cache key: one fixed string per class, so that what the
// origin sees — and may answer differently to — is exactly what the key holds, and every
// client of the class gets the response the origin made for it. Each classifies as its own
// class (Classify(c.UserAgent()) == c), so that a second proxy keying the same way, or an
// origin testing for "Mobi" as MDN recommends, reads the same class.
func (c DeviceClass) UserAgent() string {
	switch c {
	case Mobile:
		return "Mozilla/5.0 (compatible; reel-edge; Mobile)"
	case Tablet:
		return "Mozilla/5.0 (compatible; reel-edge; Tablet)"
	}
	return "Mozilla/5.0 (compatible; reel-edge; Desktop)"
}

// Classify tells the device class from a User-Agent. It is a heuristic on the tokens browsers
// put in their User-Agent, in the spirit of what CDNs document for their device headers
// (CloudFront's CloudFront-Is-{Mobile,Tablet,Desktop,SmartTV}-Viewer, told from the
// User-Agent: https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/adding-cloudfront-headers.html#cloudfront-headers-device-type)
// and on the browsers' own documentation of their User-Agent: MDN's "Browser detection using
// the user agent", section "Mobile, Tablet or Desktop" (the "Mobi" token for phones; Android
// tablets omit "Mobile"; Firefox's "Mobile"/"Tablet" tokens;
// https://developer.mozilla.org/en-US/docs/Web/HTTP/Browser_detection_using_the_user_agent)
// and Chrome's "User-Agent strings" page (Chrome on Android phones says "Mobile Safari", on
// tablets "Safari"; https://developer.chrome.com/docs/multidevice/user-agent/). In order:
//
//   - empty, or a crawler ("bot/", "bot;", "crawler", "spider", "slurp", or a "+http"
//     contact URL, case-insensitive) → desktop: crawlers index the canonical page;
//   - a smart TV or set-top box ("SmartTV", "SMART-TV", "Android TV", "GoogleTV", "AppleTV",
//     "HbbTV", "BRAVIA", "Web0S", "CrKey", "AFT" Fire TV models) → desktop: a big screen;
//   - "iPad", a "Tablet" token (but not Windows' "Tablet PC"), "Kindle", "Silk", "PlayBook"
//     → tablet;
//   - "Mobi" (Mobile, Mobile Safari, IEMobile, Opera Mobi), "iPhone", "iPod", "Windows Phone",
//     "Opera Mini", "BlackBerry", "BB10" → mobile;
//   - "Android" without any of those → tablet (Android tablets drop "Mobile");
//   - anything else → desktop.
//
// Its limit: iPadOS 13 and later ask for desktop sites by default with a User-Agent identical
// to macOS Safari's ("Macintosh; Intel Mac OS X 10_15_7"), so those iPads are desktops here —
// as they ask to be treated; only script in the page (touch points) can tell them apart.
// Windows tablets (Surface) are likewise desktops. Classify allocates nothing.
func Classify(ua string) DeviceClass {
	if ua == "" || isCrawler(ua) {
		return Desktop
	}
	for _, tok := range tvTokens {
		if strings.Contains(ua, tok) {
			return Desktop
		}
	}
	if strings.Contains(ua, "iPad") || hasTabletToken(ua) || strings.Contains(ua, "Kindle") ||
		strings.Contains(ua, "Silk") || strings.Contains(ua, "PlayBook") {
		return Tablet
	}
	for _, tok := range mobileTokens {
		if strings.Contains(ua, tok) {
			return Mobile
		}
	}
	if strings.Contains(ua, "Android") {
		return Tablet
	}
	return Desktop
}

var (
	tvTokens     = []string{"SmartTV", "SMART-TV", "Android TV", "GoogleTV", "AppleTV", "HbbTV", "BRAVIA", "Web0S", "CrKey", "; AFT"}
	mobileTokens = []string{"Mobi", "iPhone", "iPod", "Windows Phone", "Opera Mini", "BlackBerry", "BB10"}
	crawlerWords = []string{"bot/", "bot;", "bot)", "crawler", "spider", "slurp", "+http"}
)

// hasTabletToken: "Tablet" as Firefox for Android sends it ("Android 14; Tablet;"), not the
// "Tablet PC" older Windows browsers add on ordinary laptops.
func hasTabletToken(ua string) bool {
	for s := ua; ; {
		i := strings.Index(s, "Tablet")
		if i < 0 {
			return false
		}
		s = s[i+len("Tablet"):]
		if !strings.HasPrefix(s, " PC") {
			return true
		}
	}
}

// isCrawler reports whether ua names a crawler: one of crawlerWords, ASCII case-insensitively,
// in one pass over ua that looks closer only where a word could start.
func isCrawler(ua string) bool {
	for i := 0; i < len(ua); i++ {
		switch ua[i] | 0x20 { // ASCII letters to lower case
		case 'b', 'c', 's', '+':
			for _, w := range crawlerWords {
				if w[0] == ua[i]|0x20 && hasFoldAt(ua, i, w) {
					return true
				}
			}
		}
	}
	return false
}

// hasFoldAt reports whether s holds the lower-case ASCII word w at i, ignoring ASCII case.
func hasFoldAt(s string, i int, w string) bool {
	if len(s)-i < len(w) {
		return false
	}
	for j := 0; j < len(w); j++ {
		c := s[i+j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[j] {
			return false
		}
	}
	return true
}
