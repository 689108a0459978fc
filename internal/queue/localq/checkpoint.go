package localq

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const checkpointFile = "checkpoint"

// checkpoint is the persisted consumer state. Segment/Offset is the
// acknowledged position; ReadSegment/ReadOffset is how far earlier processes
// handed entries out, and Deliveries how often at most (for Message.Deliveries
// after a restart).
type checkpoint struct {
	Segment     uint64 `json:"segment"`
	Offset      int64  `json:"offset"`
	ReadSegment uint64 `json:"readSegment"`
	ReadOffset  int64  `json:"readOffset"`
	Deliveries  int    `json:"deliveries"`
}

// readCheckpoint returns the zero checkpoint when there is none yet.
func readCheckpoint(dir string) (checkpoint, error) {
	var ck checkpoint
	b, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return ck, nil
	}
	if err != nil {
		return ck, err
	}
	if err := json.Unmarshal(b, &ck); err != nil {
		return checkpoint{}, err
	}
	if ck.Offset < 0 || ck.ReadOffset < 0 {
		return checkpoint{}, fmt.Errorf("negative offset in %s", b)
	}
	return ck, nil
}

// writeCheckpointLocked persists the acknowledged and read positions with
// a temp file and a rename, so a crash leaves the old or the new
// checkpoint, never a torn one. sync asks for an fsync (with Options.Fsync)
// before the rename; losing a checkpoint only causes redeliveries. The
// caller holds ckMu.
func (q *Queue) writeCheckpointLocked(sync bool) error {
	q.mu.Lock()
	ck := checkpoint{Segment: q.ack.seg, Offset: q.ack.off, Deliveries: 1}
	read := q.readAt
	if read.less(q.prevRead) {
		read = q.prevRead
	}
	if q.ack.less(q.prevRead) {
		ck.Deliveries = q.prevDeliveries + 1
	}
	ck.ReadSegment, ck.ReadOffset = read.seg, read.off
	q.mu.Unlock()

	b, err := json.Marshal(ck)
	if err != nil {
		return err
	}
	tmp := filepath.Join(q.dir, checkpointFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("localq: %w", err)
	}
	_, err = f.Write(b)
	if err == nil && sync && q.opts.Fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(q.dir, checkpointFile))
	}
	if err != nil {
		return fmt.Errorf("localq: write checkpoint: %w", err)
	}
	return nil
}
