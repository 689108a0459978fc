package enrich

import (
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/pocketlytics/pocketlytics/internal/sitecache"
)

// Channels, the coarse classification of where a visit came from.
const (
	ChannelDirect   = "direct"
	ChannelSearch   = "search"
	ChannelSocial   = "social"
	ChannelEmail    = "email"
	ChannelPaid     = "paid"
	ChannelReferral = "referral"
)

// stepSource sets the referrer host (lower case, without "www."; empty for
// a referrer on the same site) and the channel.
func stepSource(p *Pipeline, s *state) string {
	host := referrerHost(s.in.Hit.Referrer)
	if host != "" && sameSite(host, s.ev.Hostname, &s.in.Site) {
		host = ""
	}
	s.ev.ReferrerHost = host
	s.ev.Channel = classify(host, s.ev.UTMSource, s.ev.UTMMedium, s.paid)
	return ""
}

// referrerHost returns the host of a referrer URL, without a leading "www.".
// App referrers ("android-app://com.google.android.gm/") give the package.
func referrerHost(ref string) string {
	if ref == "" {
		return ""
	}
	u, ok := splitURL(ref)
	if !ok {
		return ""
	}
	return strings.TrimPrefix(u.host, "www.")
}

// sameSite reports whether the referrer host belongs to the site: the page's
// own host or one of the site's domains (or their subdomains, when the site
// allows them), with or without "www.".
func sameSite(ref, page string, site *sitecache.Site) bool {
	if ref == strings.TrimPrefix(page, "www.") {
		return true
	}
	for _, d := range site.Domains {
		d = strings.TrimPrefix(d, "www.")
		if ref == d || site.AllowSubdomains && strings.HasSuffix(ref, d) && len(ref) > len(d) && ref[len(ref)-len(d)-1] == '.' {
			return true
		}
	}
	return false
}

// classify picks the channel of a visit. The first rule that applies wins:
//
//  1. paid: an ad click id in the URL, or utm_medium cpc, ppc, cpm, cpv, cpa,
//     paid*, display, banner, retargeting or remarketing
//  2. email: utm_medium email, e-mail or newsletter
//  3. utm_medium social / social-media / sm → social; organic → search;
//     referral → referral
//  4. the referrer host in the tables of channels.go (search engines, social
//     networks, webmail), including any host starting with "mail.",
//     "webmail." or "outlook." and fediverse-looking hosts
//  5. utm_source in the same tables ("google", "facebook", "newsletter", ...)
//  6. referral for any other referrer or UTM-tagged visit, else direct
func classify(refHost, utmSource, utmMedium string, paidClick bool) string {
	medium := strings.ToLower(utmMedium)
	switch {
	case paidClick || paidMedium(medium):
		return ChannelPaid
	case medium == "email" || medium == "e-mail" || medium == "e_mail" || medium == "newsletter":
		return ChannelEmail
	case medium == "social" || medium == "social-media" || medium == "social_media" || medium == "social-network" || medium == "sm":
		return ChannelSocial
	case medium == "organic":
		return ChannelSearch
	case medium == "referral":
		return ChannelReferral
	}
	if refHost != "" {
		if ch := hostChannel(refHost); ch != "" {
			return ch
		}
	}
	if utmSource != "" {
		if ch := sourceChannel(strings.ToLower(utmSource)); ch != "" {
			return ch
		}
	}
	if refHost != "" || utmSource != "" || medium != "" {
		return ChannelReferral
	}
	return ChannelDirect
}

func paidMedium(m string) bool {
	switch m {
	case "cpc", "ppc", "cpm", "cpv", "cpa", "cpp", "display", "banner", "retargeting", "remarketing":
		return true
	}
	return strings.HasPrefix(m, "paid")
}

// hostChannel classifies a referrer host (lower case, no "www.") by the
// tables in channels.go; "" when it is none of them.
func hostChannel(host string) string {
	if ch, ok := channelHosts[host]; ok {
		return ch
	}
	first, _, _ := strings.Cut(host, ".")
	switch first {
	case "mail", "webmail", "email", "outlook":
		if first != host {
			return ChannelEmail
		}
	}
	if strings.HasSuffix(host, ".social") || strings.Contains(host, "mastodon") || strings.Contains(host, "mstdn") {
		return ChannelSocial
	}
	// The brand is the label before the public suffix: google in
	// news.google.co.uk, facebook in l.facebook.com.
	site, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		return ""
	}
	brand, _, _ := strings.Cut(site, ".")
	return channelBrands[brand]
}

// sourceChannel classifies a utm_source value (lower case): a known name or
// alias, or a host name.
func sourceChannel(src string) string {
	if ch, ok := channelSources[src]; ok {
		return ch
	}
	if ch, ok := channelBrands[src]; ok {
		return ch
	}
	if strings.IndexByte(src, '.') > 0 {
		return hostChannel(strings.TrimPrefix(src, "www."))
	}
	return ""
}
