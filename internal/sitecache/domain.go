package sitecache

import (
	"errors"
	"strings"

	"golang.org/x/net/idna"
)

// MaxDomains is the most host names one site may list.
const MaxDomains = 50

// NormalizeDomain turns what a user typed as a site's domain into the form
// stored and compared: lower case, ASCII (IDN labels in punycode, as
// browsers put them in location.href), no trailing dot. It refuses anything
// that is not a bare host name: schemes, paths, ports, wildcards, spaces.
func NormalizeDomain(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("a domain must not be empty")
	}
	if strings.Contains(s, "://") {
		return "", errors.New("write the bare host name, without scheme (example.com, not https://example.com)")
	}
	if strings.ContainsAny(s, "/?#@:*") || strings.ContainsFunc(s, isSpace) {
		return "", errors.New("write the bare host name, without path, port or wildcard (example.com)")
	}

	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if !isASCII(s) {
		a, err := idna.Lookup.ToASCII(s)
		if err != nil {
			return "", errors.New("not a valid international domain name")
		}
		s = a
	}

	if !validHostname(s) {
		return "", errors.New("not a valid host name (letters, digits, hyphens and dots; labels of at most 63 characters)")
	}
	return s, nil
}

// validHostname reports whether s is an RFC 1123 host name in lower case.
func validHostname(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// canonicalHost lower-cases a host, drops a trailing dot and a leading
// "www.": example.com and www.example.com are one site to its owner.
func canonicalHost(h string) string {
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			h = strings.ToLower(h)
			break
		}
	}
	return strings.TrimPrefix(h, "www.")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == 0x85 || r == 0xA0
}
