package event_test

import (
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

// benchEvent is a typical custom event as ingest produces it.
func benchEvent() event.Event {
	ev := full()
	ev.Props = map[string]string{"plan": "pro", "source": "footer"}
	return ev
}

// BenchmarkEncode measures the queue's encoding on the ingest path (one
// event per call).
func BenchmarkEncode(b *testing.B) {
	ev := benchEvent()
	b.Run("binary", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = ev.AppendBinary(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(buf)), "bytes/event")
	})
	b.Run("binary-marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ev.MarshalBinary(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecode measures decoding on the flusher's read path.
func BenchmarkDecode(b *testing.B) {
	ev := benchEvent()
	bin, _ := ev.MarshalBinary()
	b.Run("binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got event.Event
			if err := got.UnmarshalBinary(bin); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("binary-string", func(b *testing.B) {
		s := string(bin)
		b.ReportAllocs()
		for b.Loop() {
			var got event.Event
			if err := event.DecodeString(s, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}
