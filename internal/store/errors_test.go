package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/store"
)

type notPermanent struct{}

func (notPermanent) Error() string   { return "flaky" }
func (notPermanent) Permanent() bool { return false }

func TestIsPermanent(t *testing.T) {
	base := errors.New("bad value")
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"context", context.DeadlineExceeded, false},
		{"marked", store.PermanentError(base), true},
		{"wrapped marked", fmt.Errorf("insert: %w", store.PermanentError(base)), true},
		{"joined", errors.Join(base, store.PermanentError(base)), true},
		{"implements false", notPermanent{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := store.IsPermanent(c.err); got != c.want {
				t.Fatalf("IsPermanent(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}

	if store.PermanentError(nil) != nil {
		t.Fatal("PermanentError(nil) should be nil")
	}
	if !errors.Is(store.PermanentError(base), base) {
		t.Fatal("PermanentError should unwrap to its cause")
	}
}
