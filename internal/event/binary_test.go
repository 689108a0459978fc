package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

// full sets every field.
func full() event.Event {
	return event.Event{
		ID:           "0123456789abcdef0123456789abcdef",
		Time:         time.UnixMilli(1_764_230_400_123).UTC(),
		SiteID:       "site1",
		Type:         event.Custom,
		Name:         "signup",
		Props:        map[string]string{"plan": "pro", "b": "", "": "empty key", "ünï": "cödé ✓"},
		Hostname:     "example.com",
		Pathname:     "/pricing",
		Title:        "Pricing — Example",
		ReferrerHost: "news.ycombinator.com",
		Channel:      "referral",
		UTMSource:    "hn",
		UTMMedium:    "social",
		UTMCampaign:  "launch",
		UTMTerm:      "analytics",
		UTMContent:   "top",
		Country:      "DE",
		Region:       "BE",
		City:         "Berlin",
		Latitude:     52.520008,
		Longitude:    13.404954,
		Device:       "desktop",
		Browser:      "Firefox",
		OS:           "Linux",
		ScreenWidth:  1920,
		VisitorID:    0x7fff_ffff_ffff_ffff,
		SessionID:    42,
		Entry:        true,
	}
}

// engaged is a leave with engagement, as the tracker sends it.
func engaged() event.Event {
	ev := full()
	ev.Type, ev.Name, ev.Props = event.Leave, "", nil
	ev.Engaged, ev.Scroll = 15250, 80
	return ev
}

func TestBinaryRoundTrip(t *testing.T) {
	many := map[string]string{}
	for i := range 100 {
		many[strings.Repeat("k", i+1)] = strings.Repeat("v", i)
	}
	cases := []struct {
		name string
		ev   event.Event
	}{
		{"every field", full()},
		{"engagement", engaged()},
		{"scroll only", event.Event{Type: event.Ping, Scroll: 100}},
		{"zero", event.Event{}},
		{"pageview without optional fields", event.Event{
			ID: "a", Time: time.UnixMilli(1).UTC(), SiteID: "s", Type: event.Pageview, VisitorID: 1, SessionID: 2,
		}},
		{"unicode", event.Event{
			Title: "日本語のタイトル 🎉", Pathname: "/ü/ñ/€", City: "São Paulo", Name: "\u0000nul\u2028",
			Props: map[string]string{"emoji": "🦄", "κλειδί": "τιμή"},
		}},
		{"invalid UTF-8 kept byte for byte", event.Event{Title: "\xff\xfe", Props: map[string]string{"\xc3": "\x80"}}},
		{"max values", event.Event{
			Time:        time.UnixMilli(math.MaxInt64).UTC(),
			ScreenWidth: math.MaxInt,
			Engaged:     math.MaxInt,
			VisitorID:   math.MaxUint64,
			SessionID:   math.MaxUint64,
			Latitude:    math.MaxFloat64,
			Longitude:   -math.MaxFloat64,
		}},
		{"min values", event.Event{
			Time:        time.UnixMilli(math.MinInt64).UTC(),
			ScreenWidth: math.MinInt,
			Latitude:    math.SmallestNonzeroFloat64,
			Longitude:   math.Inf(-1),
		}},
		{"negative zero and one coordinate", event.Event{Latitude: math.Copysign(0, -1), Longitude: 0}},
		{"before 1970", event.Event{Time: time.Date(1969, 12, 31, 23, 59, 59, 999e6, time.UTC)}},
		{"long strings", event.Event{Title: strings.Repeat("x", 1<<16), Pathname: strings.Repeat("/y", 300)}},
		{"many props", event.Event{Props: many}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.ev.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != event.FormatBinaryV1 {
				t.Fatalf("first byte 0x%02x, want the format byte", b[0])
			}
			var got event.Event
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if !sameEvent(got, c.ev) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, c.ev)
			}
			var fromString event.Event
			if err := event.DecodeString(string(b), &fromString); err != nil || !sameEvent(fromString, c.ev) {
				t.Fatalf("DecodeString = %+v, %v", fromString, err)
			}
			// Appending to existing bytes leaves them alone.
			prefixed, err := c.ev.AppendBinary([]byte("prefix"))
			if err != nil || string(prefixed[:6]) != "prefix" || !bytes.Equal(prefixed[6:], b) {
				t.Fatalf("AppendBinary with a prefix = %q, %v", prefixed, err)
			}
		})
	}
}

// sameEvent compares events field by field, floats by their bits (NaN and
// -0 included), times by instant and location.
func sameEvent(a, b event.Event) bool {
	if math.Float64bits(a.Latitude) != math.Float64bits(b.Latitude) ||
		math.Float64bits(a.Longitude) != math.Float64bits(b.Longitude) ||
		!a.Time.Equal(b.Time) || a.Time.Location() != b.Time.Location() ||
		len(a.Props) != len(b.Props) {
		return false
	}
	for k, v := range a.Props {
		if w, ok := b.Props[k]; !ok || w != v {
			return false
		}
	}
	a.Latitude, a.Longitude, a.Time, a.Props = 0, 0, time.Time{}, nil
	b.Latitude, b.Longitude, b.Time, b.Props = 0, 0, time.Time{}, nil
	return reflect.DeepEqual(a, b)
}

func TestBinaryNormalises(t *testing.T) {
	ev := full()
	ev.Time = time.Date(2026, 11, 27, 10, 0, 0, 123_456_789, time.FixedZone("CET", 3600))
	ev.Props = map[string]string{}
	ev.Latitude = math.NaN()
	b, err := ev.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got event.Event
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 27, 9, 0, 0, 123_000_000, time.UTC); got.Time != want {
		t.Errorf("time = %v, want %v (UTC, milliseconds)", got.Time, want)
	}
	if got.Props != nil {
		t.Errorf("empty props decoded as %#v, want nil (as JSON's omitempty)", got.Props)
	}
	if !math.IsNaN(got.Latitude) {
		t.Errorf("latitude = %v, want NaN", got.Latitude)
	}
}

func TestBinaryDeterministic(t *testing.T) {
	ev := full()
	first, err := ev.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		// A fresh map iterates in another order.
		ev.Props = map[string]string{}
		for k, v := range full().Props {
			ev.Props[k] = v
		}
		b, err := ev.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, first) {
			t.Fatalf("encodings differ:\n%x\n%x", b, first)
		}
	}
}

func TestBinaryIsCompact(t *testing.T) {
	ev := full()
	b, _ := ev.MarshalBinary()
	j, _ := json.Marshal(&ev)
	if len(b) >= len(j)*3/4 {
		t.Fatalf("binary %d bytes, JSON %d: want at most three quarters", len(b), len(j))
	}
}

func TestBinaryTimeOutOfRange(t *testing.T) {
	ev := event.Event{Time: time.Date(300_000_000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := ev.MarshalBinary(); err == nil {
		t.Fatal("want an error for a time beyond int64 milliseconds")
	}
}

func TestUnmarshalCorrupt(t *testing.T) {
	ev := full()
	valid, err := ev.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	setByte := func(i int, c byte) []byte {
		b := bytes.Clone(valid)
		b[i] = c
		return b
	}
	cases := []struct {
		name string
		in   []byte
		want string // in the error text
	}{
		{"empty", nil, "empty input"},
		{"unknown format", []byte{0x02, 0}, "unknown format byte 0x02"},
		{"text", []byte("pageview"), "unknown format byte 0x70"},
		{"format byte only", []byte{event.FormatBinaryV1}, "truncated"},
		{"unknown flags", setByte(1, 0x80), "unknown flags 0x80"},
		{"engagement flag without engagement", setByte(1, valid[1]|1<<2), "e at byte"},
		{"id length beyond the input", []byte{event.FormatBinaryV1, 0, 0x7f, 'a'}, "id at byte 2: length 127 exceeds the 1 bytes left"},
		{"huge length", append([]byte{event.FormatBinaryV1, 0}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), "exceeds"},
		{"varint overflow", append([]byte{event.FormatBinaryV1, 0}, bytes.Repeat([]byte{0xff}, 11)...), "overflows 64 bits"},
		{"truncated", valid[:len(valid)-1], "truncated"},
		{"every prefix fails", valid[:len(valid)/2], "event: malformed encoding"},
		{"trailing bytes", append(bytes.Clone(valid), 0), "1 trailing bytes"},
		{"huge props count", []byte{event.FormatBinaryV1, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, "pairs cannot fit"},
		{"props out of order", propsEvent(t, "b", "a"), "keys must be unique and sorted"},
		{"duplicate props key", propsEvent(t, "a", "a"), "keys must be unique and sorted"},
		{"JSON, as versions before the binary format queued events", []byte(`{"id":"x1","type":"pageview"}`), "unknown format byte 0x7b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := event.Event{ID: "untouched"}
			err := ev.UnmarshalBinary(c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
			if !errors.Is(err, event.ErrMalformed) {
				t.Errorf("err = %v, want it to wrap ErrMalformed", err)
			}
			if ev.ID != "untouched" {
				t.Errorf("a failed decode changed the event: %+v", ev)
			}
		})
	}

	// Any prefix of a valid encoding is an error, never a panic.
	for n := range len(valid) {
		var ev event.Event
		if err := ev.UnmarshalBinary(valid[:n]); err == nil {
			t.Fatalf("prefix of %d bytes decoded", n)
		}
	}
}

// propsEvent encodes an event with two props whose keys are written in the
// given order, bypassing the encoder's sorting.
func propsEvent(t *testing.T, k1, k2 string) []byte {
	t.Helper()
	b := []byte{event.FormatBinaryV1, 0, 0, 0, 0, 0, 0, 2, 1, k1[0], 0, 1, k2[0], 0}
	b = append(b, make([]byte, 13)...) // host … city
	b = append(b, 0, 0, 0, 0)          // dev, br, os, w
	return append(b, make([]byte, 16)...)
}

func FuzzUnmarshalBinary(f *testing.F) {
	for _, ev := range []event.Event{full(), engaged(), {}, {ID: "x", Props: map[string]string{"a": "1"}}} {
		b, err := ev.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{event.FormatBinaryV1})
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		var ev event.Event
		if err := ev.UnmarshalBinary(data); err != nil {
			return
		}
		// Whatever decodes encodes, and that encoding
		// decodes to the same event and re-encodes to the same bytes.
		b, err := ev.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %+v, but it does not encode: %v", ev, err)
		}
		var again event.Event
		if err := again.UnmarshalBinary(b); err != nil {
			t.Fatalf("re-encoding %x does not decode: %v", b, err)
		}
		b2, err := again.MarshalBinary()
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("encodings differ after a round trip:\n%x\n%x (%v)", b, b2, err)
		}
		if data[0] == event.FormatBinaryV1 && !sameEvent(ev, again) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, again)
		}
	})
}

func TestBinaryAllocations(t *testing.T) {
	ev := full()
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf, _ = ev.AppendBinary(buf[:0]) }); n != 0 {
		t.Errorf("AppendBinary into a buffer with room: %v allocations, want 0", n)
	}
	withProps := string(buf)
	ev.Props = nil
	noProps, _ := ev.MarshalBinary()
	for _, c := range []struct {
		name string
		in   string
		max  float64
	}{
		{"without props", string(noProps), 0},
		{"with props", withProps, 2}, // the map
	} {
		var got event.Event
		if n := testing.AllocsPerRun(100, func() { _ = event.DecodeString(c.in, &got) }); n > c.max {
			t.Errorf("DecodeString %s: %v allocations, want at most %v", c.name, n, c.max)
		}
	}
}
