package testutil

import "testing"

func TestWithDatabase(t *testing.T) {
	cases := []struct{ in, db, want string }{
		{"clickhouse://default:@127.0.0.1:9000/analytics", "x", "clickhouse://default:@127.0.0.1:9000/x"},
		{"clickhouse://127.0.0.1:9000", "x", "clickhouse://127.0.0.1:9000/x"},
		{"clickhouse://u:p@h:9000/a?dial_timeout=1s", "x", "clickhouse://u:p@h:9000/x?dial_timeout=1s"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			if got := withDatabase(c.in, c.db); got != c.want {
				t.Fatalf("withDatabase(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}
