package enrich

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net/netip"
)

// visitorID is the visitor id of ip and userAgent on siteID under a daily
// salt: HMAC-SHA256 truncated to 63 bits, so it fits a signed 64-bit
// column. The same browser on the same site gets the same id all day, a
// different one on another site, and an unlinkable one once the salt is
// gone; the IP address is hashed and dropped. IPv4 and IPv4-mapped IPv6
// forms of an address give the same id.
func visitorID(salt []byte, siteID string, ip netip.Addr, userAgent string) uint64 {
	mac := hmac.New(sha256.New, salt)
	// The site id cannot contain NUL, so the fields cannot run into each other.
	io.WriteString(mac, siteID)
	ip16 := ip.As16()
	mac.Write(append([]byte{0}, ip16[:]...))
	io.WriteString(mac, userAgent)
	return binary.BigEndian.Uint64(mac.Sum(nil)) & (1<<63 - 1)
}
