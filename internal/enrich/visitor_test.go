package enrich

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/salt"
)

func TestVisitorID(t *testing.T) {
	salt1, salt2 := bytes.Repeat([]byte{1}, salt.Size), bytes.Repeat([]byte{2}, salt.Size)
	ip4, ip4in6, ip6 := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("::ffff:203.0.113.7"), netip.MustParseAddr("2001:db8::7")
	base := visitorID(salt1, "site1", ip4, uaChromeWindows)
	if base != visitorID(salt1, "site1", ip4, uaChromeWindows) {
		t.Fatal("same input, different id")
	}
	if base != visitorID(salt1, "site1", ip4in6, uaChromeWindows) {
		t.Fatal("IPv4 and its IPv4-mapped form differ")
	}
	differ := map[string]uint64{
		"other site":   visitorID(salt1, "site2", ip4, uaChromeWindows),
		"other IP":     visitorID(salt1, "site1", ip6, uaChromeWindows),
		"other UA":     visitorID(salt1, "site1", ip4, uaSafariIPhone),
		"other salt":   visitorID(salt2, "site1", ip4, uaChromeWindows),
		"shifted site": visitorID(salt1, "site", ip4, uaChromeWindows), // site/IP boundary
	}
	for name, id := range differ {
		if id == base {
			t.Errorf("%s: same id %d", name, id)
		}
	}
	for i := range 1000 {
		ua := uaChromeWindows + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if id := visitorID(salt1, "site1", ip4, ua); id>>63 != 0 || id == 0 {
			t.Fatalf("id %x not a non-zero 63-bit value", id)
		}
	}
}

func BenchmarkVisitorID(b *testing.B) {
	s := bytes.Repeat([]byte{1}, salt.Size)
	ip := netip.MustParseAddr("203.0.113.7")
	b.ReportAllocs()
	for b.Loop() {
		visitorID(s, "site1", ip, uaChromeWindows)
	}
}
