package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// TestEmbeddedAssetsAreCurrent rebuilds the front-end from web/ into a
// temporary directory and compares it with the committed pb_public files,
// so a source change without `scripts/build-web.sh` fails here.
func TestEmbeddedAssetsAreCurrent(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: it builds the front-end (scripts/services.sh installs it)")
	}
	web := filepath.Join(testutil.ModuleRoot(), "web")
	if _, err := os.Stat(filepath.Join(web, "node_modules", "esbuild")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--silent")
		cmd.Dir = web
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in web/: %v\n%s", err, out)
		}
	}
	cmd := exec.Command("node", "build.mjs", "--check")
	cmd.Dir = web
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s", out)
	}
	t.Logf("%s", out)
}
