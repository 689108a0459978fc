package ratelimit

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	l := New(Options{Rate: 2, Burst: 3})
	k := l.key("203.0.113.7")
	now := time.Unix(1000, 0)

	for i := range 3 {
		if !l.allowAt(k, now) {
			t.Fatalf("event %d of the burst refused", i+1)
		}
	}
	if l.allowAt(k, now) {
		t.Fatal("event beyond the burst allowed")
	}
	if !l.allowAt(l.key("203.0.113.8"), now) {
		t.Fatal("another address shares the bucket")
	}
	if l.allowAt(k, now.Add(400*time.Millisecond)) {
		t.Fatal("allowed before a token refilled (rate 2/s)")
	}
	if !l.allowAt(k, now.Add(500*time.Millisecond)) {
		t.Fatal("refused after a token refilled")
	}
}

func TestKeys(t *testing.T) {
	l := New(Options{})
	scenarios := []struct {
		name string
		a, b string
		same bool
	}{
		{"same IPv4", "198.51.100.1", "198.51.100.1", true},
		{"other IPv4", "198.51.100.1", "198.51.100.2", false},
		{"IPv4-mapped IPv6", "198.51.100.1", "::ffff:198.51.100.1", true},
		{"same IPv6 /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"other IPv6 /64", "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"IPv6 zone ignored", "fe80::1%eth0", "fe80::1", true},
		{"not an address", "unknown", "unknown", true},
		{"not an address vs address", "unknown", "198.51.100.1", false},
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			if got := l.key(s.a) == l.key(s.b); got != s.same {
				t.Fatalf("key(%q) == key(%q) is %v, want %v", s.a, s.b, got, s.same)
			}
		})
	}

	// The seed is per limiter: hashes are not comparable across processes.
	if New(Options{}).key("198.51.100.1") == l.key("198.51.100.1") {
		t.Fatal("two limiters hash an address alike; the hash is not keyed")
	}
}

func TestIdleEviction(t *testing.T) {
	l := New(Options{Rate: 10, Burst: 10}) // refills in 1s
	now := time.Unix(1000, 0)
	for i := range 500 {
		l.allowAt(l.key("10.0.0."+strconv.Itoa(i%250)+"/"+strconv.Itoa(i)), now)
	}
	if n := l.Len(); n != 500 {
		t.Fatalf("want 500 tracked keys, got %d", n)
	}

	// One key stays busy; after a refill period every shard sweeps on its
	// next use and drops the full buckets.
	busy := l.key("192.0.2.1")
	later := now.Add(1500 * time.Millisecond)
	for range 5 {
		l.allowAt(busy, later)
	}
	for i := range uint64(shardCount) {
		l.allowAt(i, later) // touches every shard
	}
	if n := l.Len(); n > 1+shardCount {
		t.Fatalf("want only the recently used keys left, got %d", n)
	}
	left := 0
	for l.allowAt(busy, later) {
		left++
	}
	if left != 5 {
		t.Fatalf("the busy key has %d tokens left, want 5: the sweep reset its bucket", left)
	}
}

func TestBounded(t *testing.T) {
	l := New(Options{Rate: 1, MaxKeys: 640})
	now := time.Unix(1000, 0)
	for i := range 100000 {
		l.allowAt(uint64(i), now) // all busy: nothing is idle
	}
	if n := l.Len(); n > 640 {
		t.Fatalf("want at most 640 keys, got %d", n)
	}
}

func TestConcurrent(t *testing.T) {
	l := New(Options{Rate: 5, Burst: 10})
	k := l.key("198.51.100.9")
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Go(func() {
			n := 0
			for range 100 {
				if l.allowAt(k, now) {
					n++
				}
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if allowed != 10 {
		t.Fatalf("allowed %d of 800 concurrent events, want the burst of 10", allowed)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(Options{Rate: 1e9, Burst: 1e9})
	ips := make([]string, 1024)
	for i := range ips {
		ips[i] = "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(ips[i%len(ips)])
			i++
		}
	})
}
