package sqlitestore

import (
	"archive/zip"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/tests"
)

func TestRegisterBackup(t *testing.T) {
	const batch = 500
	cases := []struct {
		name     string
		inDir    bool // the database lives in pb_data
		inBackup bool
	}{
		{"database in pb_data", true, true},
		{"database elsewhere", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			app, err := tests.NewTestApp()
			if err != nil {
				t.Fatal(err)
			}
			defer app.Cleanup()

			path := filepath.Join(t.TempDir(), "analytics.db")
			if c.inDir {
				path = filepath.Join(app.DataDir(), "analytics.db")
			}
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			RegisterBackup(app, s)

			// These rows are still only in the WAL when the backup starts.
			ctx := context.Background()
			for i := range 6 {
				if err := s.Insert(ctx, "", testEvents(fmt.Sprintf("pre%d-", i), batch, time.Now())); err != nil {
					t.Fatal(err)
				}
			}

			// The flusher keeps writing during the backup.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if err := s.Insert(ctx, "", testEvents(fmt.Sprintf("during%d-", i), batch, time.Now())); err != nil {
						t.Error(err)
						return
					}
				}
			})
			err = app.CreateBackup(ctx, "test.zip")
			close(stop)
			wg.Wait()
			if err != nil {
				t.Fatalf("CreateBackup: %v", err)
			}

			zr, err := zip.OpenReader(filepath.Join(app.DataDir(), "backups", "test.zip"))
			if err != nil {
				t.Fatal(err)
			}
			defer zr.Close()
			var found bool
			for _, f := range zr.File {
				switch f.Name {
				case "analytics.db-wal", "analytics.db-shm":
					t.Fatalf("backup holds %s: a live WAL copied beside the database", f.Name)
				case "analytics.db":
					found = true
					n, integrity := restoredRows(t, f)
					if integrity != "ok" {
						t.Fatalf("integrity check of the backed up database: %s", integrity)
					}
					if n < 6*batch || n%batch != 0 {
						t.Fatalf("backed up database has %d rows, want all %d from before the backup and whole batches only", n, 6*batch)
					}
				}
			}
			if found != c.inBackup {
				t.Fatalf("analytics.db in the backup: %v, want %v", found, c.inBackup)
			}

			// Writes go on after the backup.
			if err := s.Insert(ctx, "", testEvents("post-", 1, time.Now())); err != nil {
				t.Fatalf("insert after the backup: %v", err)
			}
		})
	}
}

// restoredRows extracts a zipped database and reports its row count and
// integrity check result.
func restoredRows(t *testing.T, f *zip.File) (int, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "restored.db")
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(out, rc)
	rc.Close()
	out.Close()
	if err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var integrity string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil {
		t.Fatal(err)
	}
	return count(t, db), integrity
}
