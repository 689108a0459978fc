package uatrie

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"unsafe"

	useragent "github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/data"
)

func TestLayout(t *testing.T) {
	// Fails when a go-useragent upgrade changes the trie's layout: Freeze
	// then refuses, and the trie's objects weigh on every GC cycle again.
	if err := checkLayout(); err != nil {
		t.Fatal(err)
	}
}

// frozen is the library's trie and its frozen copy, made once: each Freeze
// maps memory for the rest of the process.
var frozen = sync.OnceValues(func() (*useragent.RuneTrie, *useragent.RuneTrie) {
	heap := useragent.NewParser().Trie
	t, err := Freeze(heap)
	if err != nil {
		panic(err)
	}
	return heap, t
})

// agents are User-Agents beyond the library's own cases: the common
// browsers, crawlers, apps and odd input.
var agents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (iPad; CPU OS 16_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
	"Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70",
	"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
	"Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25 Version/10.54",
	"Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36",
	"curl/8.5.0",
	"",
	"(((((",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
	"Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/609.4 (KHTML, like Gecko) NF/6.0.3.25.0 NintendoBrowser/5.1.0.32061",
	"Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) AppleWebkit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 YaBrowser/24.1.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Vivaldi/6.5",
	"Mozilla/5.0 \u00e9\u00e8 (Windows; \u4e2d\u6587) Firefox/1\xff2",
}

func TestFreezeParsesAlike(t *testing.T) {
	heap, frozen := frozen()
	var inputs []string
	for _, c := range data.AllTestCases {
		inputs = append(inputs, c.UserAgent)
	}
	inputs = append(inputs, agents...)
	for _, ua := range inputs {
		// Every prefix too: the walk stops at every depth of the trie.
		for i := 0; i <= len(ua); i++ {
			if got, want := frozen.Get(ua[:i]), heap.Get(ua[:i]); got != want {
				t.Fatalf("%q: frozen %s/%s/%s %q, heap %s/%s/%s %q", ua[:i],
					got.Browser(), got.OS(), got.Device(), got.BrowserVersion(),
					want.Browser(), want.OS(), want.Device(), want.BrowserVersion())
			}
		}
	}
	// The cases should be read as the library's own tests expect.
	for _, c := range data.AllTestCases {
		got := frozen.Get(c.UserAgent)
		if got.Browser() != c.ExpectedBrowser || got.OS() != c.ExpectedOS || got.Device() != c.ExpectedDevice {
			t.Errorf("%s: %s/%s/%s, want %s/%s/%s", c.Name, got.Browser(), got.OS(), got.Device(),
				c.ExpectedBrowser, c.ExpectedOS, c.ExpectedDevice)
		}
	}
}

func TestFreezeCopiesEveryNode(t *testing.T) {
	heap, frozen := frozen()
	count := func(tr *useragent.RuneTrie) (nodes, children, results int) {
		walk(nodeOf(tr), func(n *node) {
			nodes++
			children += len(n.children)
			results += len(n.result)
		})
		return
	}
	hn, hc, hr := count(heap)
	fn, fc, fr := count(frozen)
	if hn != fn || hc != fc || hr != fr || hn < 10_000 {
		t.Fatalf("heap trie %d nodes, %d edges, %d results; frozen %d, %d, %d", hn, hc, hr, fn, fc, fr)
	}
	if hc != hn-1 {
		t.Fatalf("%d nodes but %d edges: not a tree", hn, hc)
	}
}

func TestFreezeNil(t *testing.T) {
	if _, err := Freeze(nil); err == nil {
		t.Fatal("Freeze(nil) succeeded")
	}
}

func FuzzFreeze(f *testing.F) {
	for _, ua := range agents {
		f.Add(ua)
	}
	for _, c := range data.AllTestCases {
		f.Add(c.UserAgent)
	}
	heap, frozen := frozen()
	f.Fuzz(func(t *testing.T, ua string) {
		for _, s := range []string{ua, strings.ToLower(ua), "Mozilla/5.0 (" + ua + ")"} {
			if got, want := frozen.Get(s), heap.Get(s); got != want {
				t.Fatalf("%q: frozen %v, heap %v", s, got, want)
			}
		}
	})
}

func nodeOf(t *useragent.RuneTrie) *node { return (*node)(unsafe.Pointer(t)) }

func TestFrozenTrieIsNotScanned(t *testing.T) {
	// A trie of its own, so that its heap copy can be dropped (the library's
	// is kept by the library).
	trie := &useragent.RuneTrie{}
	for i := range 3000 {
		trie.Put(fmt.Sprintf("Mozilla/5.0 (Agent%d; rv:%d) Engine/%d Browser%d", i, i%97, i%13, i))
	}
	scannable := func() uint64 {
		runtime.GC()
		s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	var nodes int
	walk(nodeOf(trie), func(*node) { nodes++ })
	withHeapTrie := scannable()

	frozen, err := Freeze(trie)
	if err != nil {
		t.Fatal(err)
	}
	want := trie.Get("Mozilla/5.0 (Agent7; rv:7) Engine/7 Browser7")
	trie = nil
	withFrozen := scannable()

	t.Logf("scannable heap %d → %d bytes, %d nodes", withHeapTrie, withFrozen, nodes)
	// Each node is 48 bytes with pointers on the heap, plus its children;
	// half of that is a safe floor for what freezing takes off.
	if drop := int64(withHeapTrie) - int64(withFrozen); drop < int64(nodes)*48/2 {
		t.Fatalf("scannable heap %d → %d bytes for a trie of %d nodes: the copy is scanned", withHeapTrie, withFrozen, nodes)
	}
	if got := frozen.Get("Mozilla/5.0 (Agent7; rv:7) Engine/7 Browser7"); got != want {
		t.Fatalf("frozen %v, heap %v", got, want)
	}
}
