package storetest

import "testing"

// TestReferenceKnownAnswers holds the reference to the answers worked out by
// hand, so that the stores, which are checked against the reference, are
// checked against the definitions.
func TestReferenceKnownAnswers(t *testing.T) {
	CheckKnown(t, NewReference(KnownEvents()).Querier())
}

// TestGenerateIsDeterministic: the parity tests' expectations must not move
// between runs.
func TestGenerateIsDeterministic(t *testing.T) {
	a, b := Generate(DefaultOptions()), Generate(DefaultOptions())
	if len(a.Events) != len(b.Events) || len(a.Events) == 0 {
		t.Fatalf("%d and %d events", len(a.Events), len(b.Events))
	}
	for i := range a.Events {
		if a.Events[i].ID != b.Events[i].ID || !a.Events[i].Time.Equal(b.Events[i].Time) {
			t.Fatalf("event %d differs: %+v, %+v", i, a.Events[i], b.Events[i])
		}
	}
}

// TestTruthMatchesReference: the generator's own counts agree with the
// reference over all of a site's data.
func TestTruthMatchesReference(t *testing.T) {
	opts := DefaultOptions()
	ds := Generate(opts)
	ref := NewReference(ds.Events)
	for _, site := range opts.Sites {
		q := allTime(opts, site.ID)
		if got, want := ref.Totals(q), ds.Truth[site.ID]; got != want {
			t.Errorf("%s: reference %+v, truth %+v", site.ID, got, want)
		}
	}
}
