package sqlitestore

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
)

// RegisterBackup makes PocketBase's backups (App.CreateBackup: the admin
// UI, the API and the backup cron) carry a consistent copy of the analytics
// database.
//
// PocketBase copies its own data.db and auxiliary.db with VACUUM INTO but
// zips every other file of pb_data as it finds it. An analytics.db in
// pb_data would be copied while the flusher writes: the main file and its
// -wal taken at different moments, and commits that are still only in the
// WAL missing from the main file. RegisterBackup therefore, for the
// duration of the backup, holds the store's writer connection (inserts and
// retention wait; the durable queue keeps accepting hits, and the flusher
// catches up afterwards), checkpoints the WAL into the main file and
// truncates it, and leaves the -wal and -shm files out of the zip. With no
// writer, nothing changes the main file while it is zipped, so the archive
// holds a complete, consistent analytics.db that a restore puts back in
// place. Queries keep working during the backup.
//
// A VACUUM INTO copy would not pause inserts, but the zip can only carry
// files under their own names, so the copy could not be restored as
// analytics.db; it would also double the disk space the backup needs.
//
// Together with localq.RegisterBackup for the queue directory: the flusher
// acknowledges only after an insert committed, and inserts wait during the
// backup, so the archived queue never acknowledges an event the archived
// database lacks; entries it still holds are delivered again after a
// restore and the idempotent inserts absorb any that were stored.
//
// A database outside the app's data dir is not part of its backups and is
// left alone.
func RegisterBackup(app core.App, s *Store) {
	app.OnBackupCreate().Bind(&hook.Handler[*core.BackupEvent]{
		Id: "pocketlytics_analytics_backup",
		Func: func(e *core.BackupEvent) error {
			rel, err := filepath.Rel(e.App.DataDir(), s.path)
			if err != nil || !filepath.IsLocal(rel) {
				return e.Next()
			}

			ctx := e.Context
			if ctx == nil {
				ctx = context.Background()
			}
			release, err := s.pauseWrites(ctx)
			if err != nil {
				return fmt.Errorf("analytics backup: %w", err)
			}
			defer release()

			rel = filepath.ToSlash(rel)
			e.Exclude = append(e.Exclude, rel+"-wal", rel+"-shm")
			return e.Next()
		},
	})
}

// pauseWrites takes the writer connection, so no insert or delete runs
// until release is called, and moves the whole WAL into the main file.
func (s *Store) pauseWrites(ctx context.Context) (release func(), err error) {
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	// TRUNCATE waits (busy_timeout) for readers still using the WAL; when
	// it cannot finish it reports busy instead of failing, so check and
	// retry a few times.
	for attempt := 0; ; attempt++ {
		var busy, logFrames, checkpointed int
		err = conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &checkpointed)
		if err == nil && busy == 0 {
			return func() { conn.Close() }, nil
		}
		if err == nil {
			err = fmt.Errorf("wal checkpoint blocked by readers (%d of %d frames copied)", checkpointed, logFrames)
		}
		if attempt == 4 || ctx.Err() != nil {
			conn.Close()
			return nil, fmt.Errorf("sqlitestore: %w", err)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}
