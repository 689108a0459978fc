package localq

import (
	"context"
	"fmt"
	"os"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

// maxCommit bounds how many bytes the writer gathers into one write.
const maxCommit = 8 << 20

// request is one Enqueue call's records on their way to the writer.
type request struct {
	buf  []byte // framed records
	n    int64  // number of records
	done chan error
}

// writer is the state of the active segment, owned by the writer goroutine.
type writer struct {
	f    *os.File
	seg  uint64
	size int64
	buf  []byte // gathers a group commit
	err  error  // sticky: set when the log can no longer be trusted
}

// Enqueue durably appends the events: it returns nil only after their
// records were written (and synced with Options.Fsync). Concurrent callers
// share one write. Once the records are handed to the writer, Enqueue waits
// for the write even if ctx ends, so that nil/non-nil reflects what is on disk.
func (q *Queue) Enqueue(ctx context.Context, events ...event.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	r := &request{n: int64(len(events)), done: make(chan error, 1)}
	for i := range events {
		// Encoded straight into the request's buffer, behind a header
		// filled in once the payload's size is known.
		start := len(r.buf)
		var err error
		r.buf, err = events[i].AppendBinary(append(r.buf, make([]byte, headerSize)...))
		if err != nil {
			return fmt.Errorf("localq: encode event %q: %w", events[i].ID, err)
		}
		if n := len(r.buf) - start - headerSize; n > maxRecord {
			return fmt.Errorf("localq: event %q is %d bytes, more than %d", events[i].ID, n, maxRecord)
		}
		sealRecord(r.buf[start:])
	}

	q.reqMu.RLock()
	if q.reqClosed {
		q.reqMu.RUnlock()
		return ErrClosed
	}
	select {
	case q.reqs <- r:
	case <-ctx.Done():
		q.reqMu.RUnlock()
		return ctx.Err()
	}
	q.reqMu.RUnlock()

	return <-r.done
}

// writeLoop is the single writer: it takes whatever requests are waiting,
// appends them with one write and answers them all.
func (q *Queue) writeLoop() {
	defer close(q.writerDone)
	batch := make([]*request, 0, 64)
	for {
		r, ok := <-q.reqs
		if !ok {
			return
		}
		batch = append(batch[:0], r)
		size := len(r.buf)
	gather:
		for size < maxCommit {
			select {
			case r, ok := <-q.reqs:
				if !ok {
					break gather // closed: write this batch, then exit above
				}
				batch = append(batch, r)
				size += len(r.buf)
			default:
				break gather
			}
		}
		err := q.commit(batch)
		for _, r := range batch {
			r.done <- err
		}
		clear(batch)
	}
}

// commit appends the batch's records to the active segment.
func (q *Queue) commit(batch []*request) error {
	w := &q.w
	if w.err != nil {
		return w.err
	}
	var buf []byte
	var n int64
	if len(batch) == 1 {
		buf, n = batch[0].buf, batch[0].n
	} else {
		w.buf = w.buf[:0]
		for _, r := range batch {
			w.buf = append(w.buf, r.buf...)
			n += r.n
		}
		buf = w.buf
	}

	if w.size > 0 && w.size+int64(len(buf)) > q.opts.SegmentSize {
		if err := q.rotate(); err != nil {
			return err
		}
	}

	if _, err := w.f.Write(buf); err != nil {
		// Cut off a partial write so the segment stays a run of whole
		// records; if even that fails, stop accepting writes.
		if terr := w.f.Truncate(w.size); terr != nil {
			w.err = fmt.Errorf("localq: segment %d left with a partial write: %w", w.seg, terr)
		}
		return fmt.Errorf("localq: write: %w", err)
	}
	if q.opts.Fsync {
		if err := w.f.Sync(); err != nil {
			// After a failed fsync the kernel may have dropped the dirty
			// pages: whether the data is on disk is unknown, so refuse
			// further writes instead of acknowledging them on top.
			w.err = fmt.Errorf("localq: fsync failed, queue needs a restart: %w", err)
			return w.err
		}
	}
	w.size += int64(len(buf))

	q.mu.Lock()
	q.segs[len(q.segs)-1].size = w.size
	q.length += n
	close(q.notify) // wake a waiting Read
	q.notify = make(chan struct{})
	q.mu.Unlock()
	return nil
}

// rotate seals the active segment and starts the next one.
func (q *Queue) rotate() error {
	w := &q.w
	f, err := createSegment(q.dir, w.seg+1, q.opts.Fsync)
	if err != nil {
		return err
	}
	old := w.f
	w.f, w.seg, w.size = f, w.seg+1, 0

	q.mu.Lock()
	q.segs = append(q.segs, &segment{id: w.seg})
	q.mu.Unlock()

	if err := old.Close(); err != nil {
		q.opts.Logger.Warn("localq: closing sealed segment", "segment", w.seg-1, "error", err)
	}
	return nil
}
