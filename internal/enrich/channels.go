package enrich

// The tables behind classify. Hosts are lower case without "www.". Sources:
// GA4's default channel groups and Plausible's referrer list, abridged to
// the names that matter; anything else is a referral.

// channelHosts classifies exact referrer hosts: short links, hosts whose
// brand is ambiguous, webmail on search brands, and Android app referrers
// ("android-app://<package>").
var channelHosts = map[string]string{
	// Search
	"search.brave.com":   ChannelSearch,
	"search.aol.com":     ChannelSearch,
	"ya.ru":              ChannelSearch,
	"so.com":             ChannelSearch,
	"m.so.com":           ChannelSearch,
	"search.naver.com":   ChannelSearch,
	"m.search.naver.com": ChannelSearch,
	"com.google.android.googlequicksearchbox": ChannelSearch,

	// Social
	"t.co":                       ChannelSocial, // X/Twitter link wrapper
	"x.com":                      ChannelSocial,
	"lnkd.in":                    ChannelSocial,
	"fb.me":                      ChannelSocial,
	"m.me":                       ChannelSocial,
	"youtu.be":                   ChannelSocial,
	"redd.it":                    ChannelSocial,
	"t.me":                       ChannelSocial,
	"news.ycombinator.com":       ChannelSocial, // Hacker News
	"bsky.app":                   ChannelSocial,
	"go.bsky.app":                ChannelSocial,
	"threads.net":                ChannelSocial,
	"threads.com":                ChannelSocial,
	"mas.to":                     ChannelSocial,
	"fosstodon.org":              ChannelSocial,
	"hachyderm.io":               ChannelSocial,
	"infosec.exchange":           ChannelSocial,
	"lobste.rs":                  ChannelSocial,
	"com.google.android.youtube": ChannelSocial,
	"com.facebook.katana":        ChannelSocial,
	"com.facebook.orca":          ChannelSocial,
	"com.instagram.android":      ChannelSocial,
	"com.twitter.android":        ChannelSocial,
	"com.linkedin.android":       ChannelSocial,
	"com.reddit.frontpage":       ChannelSocial,
	"org.telegram.messenger":     ChannelSocial,
	"com.zhiliaoapp.musically":   ChannelSocial, // TikTok

	// Email: webmail on hosts the rules would otherwise call search, and apps.
	"mail.google.com":              ChannelEmail,
	"inbox.google.com":             ChannelEmail,
	"mail.yahoo.com":               ChannelEmail,
	"mail.yandex.ru":               ChannelEmail,
	"mail.yandex.com":              ChannelEmail,
	"e.mail.ru":                    ChannelEmail,
	"mail.aol.com":                 ChannelEmail,
	"outlook.live.com":             ChannelEmail,
	"outlook.office.com":           ChannelEmail,
	"outlook.office365.com":        ChannelEmail,
	"app.fastmail.com":             ChannelEmail,
	"mail.proton.me":               ChannelEmail,
	"mail.zoho.com":                ChannelEmail,
	"app.hey.com":                  ChannelEmail,
	"com.google.android.gm":        ChannelEmail, // Gmail app
	"com.microsoft.office.outlook": ChannelEmail,
}

// channelBrands classifies a referrer by the label before its public suffix,
// so every country domain and subdomain of a brand matches (google.de,
// news.google.co.uk, l.facebook.com, old.reddit.com).
var channelBrands = map[string]string{
	// Search engines
	"google":     ChannelSearch,
	"bing":       ChannelSearch,
	"duckduckgo": ChannelSearch,
	"yahoo":      ChannelSearch,
	"yandex":     ChannelSearch,
	"baidu":      ChannelSearch,
	"ecosia":     ChannelSearch,
	"startpage":  ChannelSearch,
	"qwant":      ChannelSearch,
	"naver":      ChannelSearch,
	"seznam":     ChannelSearch,
	"sogou":      ChannelSearch,
	"ask":        ChannelSearch,
	"kagi":       ChannelSearch,
	"mojeek":     ChannelSearch,
	"yep":        ChannelSearch,
	"presearch":  ChannelSearch,
	"daum":       ChannelSearch,
	"coccoc":     ChannelSearch,

	// Social networks
	"facebook":    ChannelSocial,
	"instagram":   ChannelSocial,
	"twitter":     ChannelSocial,
	"linkedin":    ChannelSocial,
	"reddit":      ChannelSocial,
	"youtube":     ChannelSocial,
	"tiktok":      ChannelSocial,
	"pinterest":   ChannelSocial,
	"tumblr":      ChannelSocial,
	"quora":       ChannelSocial,
	"vk":          ChannelSocial,
	"weibo":       ChannelSocial,
	"snapchat":    ChannelSocial,
	"telegram":    ChannelSocial,
	"whatsapp":    ChannelSocial,
	"discord":     ChannelSocial,
	"discordapp":  ChannelSocial,
	"threads":     ChannelSocial,
	"bsky":        ChannelSocial,
	"mastodon":    ChannelSocial,
	"xing":        ChannelSocial,
	"medium":      ChannelSocial,
	"twitch":      ChannelSocial,
	"douyin":      ChannelSocial,
	"messenger":   ChannelSocial,
	"ycombinator": ChannelSocial,
	"producthunt": ChannelSocial,
}

// channelSources adds utm_source aliases that are not brand names.
var channelSources = map[string]string{
	"fb":         ChannelSocial,
	"ig":         ChannelSocial,
	"x":          ChannelSocial,
	"tw":         ChannelSocial,
	"li":         ChannelSocial,
	"yt":         ChannelSocial,
	"hn":         ChannelSocial,
	"hackernews": ChannelSocial,
	"bluesky":    ChannelSocial,
	"email":      ChannelEmail,
	"newsletter": ChannelEmail,
	"mailchimp":  ChannelEmail,
	"sendgrid":   ChannelEmail,
	"brevo":      ChannelEmail,
	"buttondown": ChannelEmail,
	"convertkit": ChannelEmail,
	"kit":        ChannelEmail,
	"beehiiv":    ChannelEmail,
	"substack":   ChannelEmail,
}
