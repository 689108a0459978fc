package chstore

import (
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/store/storetest"
)

// BenchmarkInsertDay measures rows/s for a day of realistic visits in
// 10,000-event batches (see storetest.BenchInsert).
func BenchmarkInsertDay(b *testing.B) {
	storetest.BenchInsert(b, openTest(b, Options{}), 10000)
}
