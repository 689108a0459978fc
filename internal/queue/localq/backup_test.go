package localq_test

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/tests"

	"github.com/pocketlytics/pocketlytics/internal/queue/localq"
)

// TestRegisterBackup backs up pb_data while producers append and the
// consumer acknowledges (renaming the checkpoint, deleting segments), then
// opens the archived queue.
func TestRegisterBackup(t *testing.T) {
	app, err := tests.NewTestApp()
	if err != nil {
		t.Fatal(err)
	}
	defer app.Cleanup()

	q := open(t, filepath.Join(app.DataDir(), "queue"), localq.Options{SegmentSize: 4096})
	localq.RegisterBackup(app, q)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			if err := q.Enqueue(ctx, events(fmt.Sprint("bk", i), 3)...); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
			time.Sleep(100 * time.Microsecond) // a steady load, not a flood
		}
	})
	wg.Go(func() {
		for ctx.Err() == nil {
			msgs, err := q.Read(ctx, 5, 0)
			if err != nil {
				return
			}
			if err := q.Ack(ctx, msgs); err != nil {
				t.Error(err)
				return
			}
		}
	})

	for i := range 3 {
		if err := app.CreateBackup(context.Background(), fmt.Sprintf("b%d.zip", i)); err != nil {
			cancel()
			wg.Wait()
			t.Fatalf("backup %d: %v", i, err)
		}
	}
	cancel()
	wg.Wait()

	// Restore the last archive's queue directory and open it.
	zr, err := zip.OpenReader(filepath.Join(app.DataDir(), "backups", "b2.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	restored := t.TempDir()
	var segments int
	for _, f := range zr.File {
		name, ok := strings.CutPrefix(f.Name, "queue/")
		if !ok {
			continue
		}
		if name == "LOCK" || strings.HasSuffix(name, ".tmp") {
			t.Fatalf("backup holds %s", f.Name)
		}
		if strings.HasSuffix(name, ".seg") {
			segments++
		}
		extract(t, f, filepath.Join(restored, filepath.FromSlash(name)))
	}
	if segments == 0 {
		t.Fatal("no queue segment in the backup")
	}
	rq := open(t, restored, localq.Options{})
	readAll(t, rq) // every entry after the archived checkpoint decodes
}

func extract(t *testing.T, f *zip.File, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, rc); err != nil {
		t.Fatal(err)
	}
}
