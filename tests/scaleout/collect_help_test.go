package scaleout

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestCollectHelpWithoutSettings: `collect --help` prints the help even
// without REDIS_URL and CLICKHOUSE_URL, and `collect` without them says what
// is missing.
func TestCollectHelpWithoutSettings(t *testing.T) {
	bin := testutil.BuildApp(t)
	dir := t.TempDir()

	help := exec.Command(bin, "collect", "--help", "--dir", dir)
	help.Env = []string{"HOME=" + dir}
	out, err := help.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Usage:") || !strings.Contains(string(out), "collect [domain(s)]") {
		t.Fatalf("collect --help: %v\n%s", err, out)
	}

	run := exec.Command(bin, "collect", "--dir", dir)
	run.Env = []string{"HOME=" + dir}
	out, err = run.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "a collector needs REDIS_URL and CLICKHOUSE_URL") {
		t.Fatalf("collect without settings: %v\n%s", err, out)
	}
}
