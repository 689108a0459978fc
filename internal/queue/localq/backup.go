package localq

import (
	"path/filepath"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
)

// RegisterBackup makes PocketBase's backups (App.CreateBackup) work with a
// queue directory inside pb_data (the default, pb_data/queue).
//
// PocketBase lists pb_data and then zips file by file; a file that vanishes
// in between fails the whole backup. The consumer renames the checkpoint
// on every Read and Ack and deletes acknowledged segments, so for the
// duration of the backup RegisterBackup holds those back (Read and Ack
// wait; Enqueue goes on), and leaves the lock file and a stray temporary
// checkpoint out of the zip.
//
// The archived queue is a valid queue: a segment zipped while it grew may
// end in a partial record, which Open cuts off after a restore, and its
// checkpoint is never ahead of the segments. Entries after the checkpoint
// are delivered again after a restore; the stores' idempotent inserts
// absorb them. Register sqlitestore.RegisterBackup as well so the archived
// analytics database is consistent with it.
func RegisterBackup(app core.App, q *Queue) {
	app.OnBackupCreate().Bind(&hook.Handler[*core.BackupEvent]{
		Id: "pocketlytics_queue_backup",
		Func: func(e *core.BackupEvent) error {
			rel, err := filepath.Rel(e.App.DataDir(), q.dir)
			if err != nil || !filepath.IsLocal(rel) {
				return e.Next()
			}

			q.ckMu.Lock()
			defer q.ckMu.Unlock()

			rel = filepath.ToSlash(rel)
			e.Exclude = append(e.Exclude, rel+"/LOCK", rel+"/"+checkpointFile+".tmp")
			return e.Next()
		},
	})
}
