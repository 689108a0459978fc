package scaleout

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/testutil"
)

// startNginx runs deploy/nginx/pocketlytics.conf, the config shipped for
// production, with the compose service names replaced by the test's
// addresses, and returns the proxy's base URL.
func startNginx(t *testing.T, control string, collectors ...string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx is not installed: run the suite with scripts/test.sh (make test), which installs it")
		}
	}
	raw, err := os.ReadFile(filepath.Join(testutil.ModuleRoot(), "deploy", "nginx", "pocketlytics.conf"))
	if err != nil {
		t.Fatal(err)
	}
	addr := testutil.FreeAddr(t)
	conf := string(raw)
	for _, r := range [][2]string{
		{"listen 80;", "listen " + addr + ";"},
		{"server control:8090", "server " + control},
		{"server collector-1:8090", "server " + collectors[0]},
		{"server collector-2:8090", "server " + collectors[1]},
	} {
		if !strings.Contains(conf, r[0]) {
			t.Fatalf("deploy/nginx/pocketlytics.conf has no %q", r[0])
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pocketlytics.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // the workers reach the test's private directory
	}
	main := fmt.Sprintf(`daemon off;
%s
worker_processes 2;
pid %[2]s/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/pocketlytics.conf;
}
`, user, dir)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}

	var out strings.Builder
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", "stderr")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the workers hold the output pipe too
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("nginx:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
