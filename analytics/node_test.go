package analytics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNodeIDOutlivesTheProcess(t *testing.T) {
	dir := t.TempDir()
	first, err := nodeID(dir, Config{})
	if err != nil || first == "" {
		t.Fatalf("nodeID = %q, %v", first, err)
	}
	again, err := nodeID(dir, Config{})
	if err != nil || again != first {
		t.Fatalf("second start: %q, %v; want %q", again, err, first)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "node_id"))
	if strings.TrimSpace(string(b)) != first {
		t.Fatalf("pb_data/node_id holds %q, want %q", b, first)
	}
	if other, _ := nodeID(t.TempDir(), Config{}); other == first {
		t.Fatalf("two data directories share the node id %q", first)
	}
	if set, _ := nodeID(dir, Config{NodeID: "collector-1"}); set != "collector-1" {
		t.Fatalf("NodeID set: got %q", set)
	}
}
