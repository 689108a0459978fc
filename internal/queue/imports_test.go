package queue_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestQueueImportsNoEnrichment keeps the data path one-way: a hit is
// enriched, then queued. Nothing under internal/queue may depend on
// enrichment or on the session store, directly or through another package.
func TestQueueImportsNoEnrichment(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "-f", "{{.ImportPath}}: {{join .Deps \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/pocketlytics/pocketlytics/internal/"
	forbidden := []string{mod + "enrich", mod + "session"}
	checked := 0
	for line := range strings.Lines(string(out)) {
		pkg, deps, _ := strings.Cut(strings.TrimSpace(line), ": ")
		if !strings.HasPrefix(pkg, mod+"queue") {
			continue
		}
		checked++
		for dep := range strings.FieldsSeq(deps) {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("go list listed no queue package")
	}
}
