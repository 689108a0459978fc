// Package localq is the embedded durable queue: an append-only log of
// segment files on local disk between the ingest route and the flusher.
//
// Layout of the queue directory:
//
//	00000000000000000001.seg  segment files: records framed as
//	                          [len uint32 LE][crc32c uint32 LE][event]
//	                          (event.Event's binary encoding)
//	checkpoint                the acknowledged position (written atomically)
//	dead/dead.jsonl           dead-lettered entries, one JSON object a line
//	LOCK                      keeps a second process out
//
// Enqueue is a group commit: concurrent callers hand their encoded records to
// one writer goroutine, which appends everything waiting with one write(2)
// (and one fsync when Options.Fsync is set) and then wakes them all. Enqueue
// returns after the write returned, so an accepted event survives a SIGKILL
// of the process; with Fsync it also survives a power loss.
//
// The queue has a single consumer that acknowledges in order: Ack(msgs)
// acknowledges every entry up to the highest position among msgs, acks of an
// already acknowledged prefix are ignored. Segments are deleted once all of
// their entries are acknowledged.
//
// Usage:
//
//	q, err := localq.Open("pb_data/queue", localq.Options{})
//	if err != nil { ... }
//	defer q.Close()
//	err = q.Enqueue(ctx, ev)                      // ingest side
//	msgs, err := q.Read(ctx, 1000, time.Second)  // flusher side
//	err = q.Ack(ctx, msgs)
package localq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/queue"
)

// ErrClosed is returned by calls on a closed queue.
var ErrClosed = errors.New("localq: queue closed")

var (
	_ queue.Queue        = (*Queue)(nil)
	_ queue.DeadLetterer = (*Queue)(nil)
)

// DefaultSegmentSize is the segment size used when Options.SegmentSize is 0.
const DefaultSegmentSize = 64 << 20

// Options configure a Queue. The zero value is ready to use.
type Options struct {
	// SegmentSize is the size after which the writer starts a new segment
	// file (default 64 MiB). A fully acknowledged segment is deleted, so
	// this is also the granularity at which disk space is given back.
	SegmentSize int64

	// Fsync makes every group commit call fsync before Enqueue returns:
	// accepted events then survive a power loss, not only a crash of the
	// process. It costs a disk flush per commit (concurrent callers share it).
	Fsync bool

	// Logger receives warnings about data found damaged on Open and about
	// entries that could not be decoded. Default: slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.SegmentSize <= 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Queue is a durable local queue. It is safe for concurrent use; Read and
// Ack are meant for one consumer (see the package doc).
type Queue struct {
	dir  string
	opts Options
	lock *os.File

	// Producer side: Enqueue sends requests to the writer goroutine.
	// reqMu guards sending against Close closing reqs.
	reqMu      sync.RWMutex
	reqClosed  bool
	reqs       chan *request
	writerDone chan struct{}
	w          writer // owned by the writer goroutine

	// mu guards the shared state below.
	mu       sync.Mutex
	segs     []*segment // ordered by id; the last one is being appended to
	length   int64      // committed entries after ack
	ack      pos        // everything before it is acknowledged
	readAt   pos        // copy of r.at for checkpoints
	pending  []pendingEntry
	phead    int   // index of the first pending entry
	npending int64 // pending entries handed out (skipped ones excluded)
	notify   chan struct{}
	dead     int64
	closed   bool
	closing  chan struct{}

	// Consumer side, guarded by readMu.
	readMu sync.Mutex
	r      reader

	// Delivery counting across restarts: entries before prevRead were
	// handed out prevDeliveries times by earlier processes.
	prevRead       pos
	prevDeliveries int

	ckMu sync.Mutex // serialises checkpoint writes and segment deletion

	deadMu sync.Mutex
	deadF  *os.File

	closeOnce sync.Once
	closeErr  error
}

// Open opens (or creates) the queue in dir. It recovers the acknowledged
// position from the checkpoint, scans the unacknowledged entries, and cuts
// off a record torn by a crash during a write; records whose write completed
// are never lost.
func Open(dir string, opts Options) (*Queue, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Join(dir, deadDir), 0o700); err != nil {
		return nil, fmt.Errorf("localq: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}

	q := &Queue{
		dir:        dir,
		opts:       opts,
		lock:       lock,
		reqs:       make(chan *request, 1024),
		writerDone: make(chan struct{}),
		notify:     make(chan struct{}),
		closing:    make(chan struct{}),
	}
	if err := q.recover(); err != nil {
		q.closeFiles()
		return nil, err
	}
	go q.writeLoop()
	return q, nil
}

// recover rebuilds the in-memory state from the files in dir.
func (q *Queue) recover() error {
	log := q.opts.Logger.With("queue", q.dir)

	ck, err := readCheckpoint(q.dir)
	if err != nil {
		// A damaged checkpoint only costs redeliveries, which the stores
		// absorb (inserts are idempotent), so start from the oldest entry.
		log.Warn("localq: unreadable checkpoint, redelivering from the oldest segment", "error", err)
		ck = checkpoint{}
	}
	ids, err := listSegments(q.dir)
	if err != nil {
		return err
	}

	ack := pos{ck.Segment, ck.Offset}
	for len(ids) > 0 && ids[0] < ack.seg {
		// Fully acknowledged; a crash came between checkpoint and delete.
		if err := os.Remove(segmentPath(q.dir, ids[0])); err != nil {
			return fmt.Errorf("localq: %w", err)
		}
		ids = ids[1:]
	}
	if len(ids) > 0 && ids[0] > ack.seg {
		ack = pos{ids[0], 0}
	}

	for i, id := range ids {
		path := segmentPath(q.dir, id)
		var from int64
		if id == ack.seg {
			from = ack.off
		}
		res, err := scanSegment(path, from, -1)
		if err != nil {
			return err
		}
		if id == ack.seg {
			ack.off = res.start
		}
		if res.size > res.end {
			if i == len(ids)-1 {
				// A write the crash interrupted: it was never acknowledged
				// to a producer, so cutting it off loses nothing.
				log.Info("localq: truncating torn tail", "segment", id, "bytes", res.size-res.end)
				if err := os.Truncate(path, res.end); err != nil {
					return fmt.Errorf("localq: %w", err)
				}
			} else {
				log.Warn("localq: skipping damaged data in a sealed segment", "segment", id, "bytes", res.size-res.end)
			}
		}
		q.segs = append(q.segs, &segment{id: id, size: res.end})
		q.length += res.count
	}

	if len(q.segs) == 0 {
		id := max(ack.seg, 1)
		f, err := createSegment(q.dir, id, q.opts.Fsync)
		if err != nil {
			return err
		}
		f.Close()
		q.segs = append(q.segs, &segment{id: id})
		ack = pos{id, 0}
	}
	q.ack = q.normalizeLocked(ack)

	last := q.segs[len(q.segs)-1]
	f, err := openSegmentForAppend(q.dir, last.id)
	if err != nil {
		return err
	}
	q.w = writer{f: f, seg: last.id, size: last.size}
	q.r = reader{at: q.ack}
	q.readAt = q.ack

	if prev := (pos{ck.ReadSegment, ck.ReadOffset}); q.ack.less(prev) {
		q.prevRead = prev
		q.prevDeliveries = max(ck.Deliveries, 1)
	}

	q.dead, err = countDeadLetters(q.dir)
	if err != nil {
		return err
	}
	return nil
}

// Stats reports the backlog. OldestPending is the age (from the event's
// Time) of the oldest unacknowledged entry.
func (q *Queue) Stats(ctx context.Context) (queue.Stats, error) {
	q.mu.Lock()
	st := queue.Stats{Length: q.length, Pending: q.npending, DeadLetters: q.dead}
	var oldest int64
	at, fromDisk := q.ack, false
	if q.phead < len(q.pending) {
		oldest = q.pending[q.phead].t
	} else if q.length > 0 {
		fromDisk = true
	}
	q.mu.Unlock()

	if fromDisk {
		// Nothing handed out: the oldest entry is the next unread one.
		if ev, err := readEventAt(q.dir, at); err == nil {
			oldest = ev.Time.UnixNano()
		}
	}
	if oldest != 0 {
		st.OldestPending = max(time.Since(time.Unix(0, oldest)), 0)
	}
	return st, nil
}

// Close writes what producers handed in, stops the writer, syncs the active
// segment and releases the directory. Calls after Close fail with ErrClosed.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		q.reqMu.Lock()
		q.reqClosed = true
		close(q.reqs)
		q.reqMu.Unlock()
		<-q.writerDone

		q.mu.Lock()
		q.closed = true
		close(q.closing)
		q.mu.Unlock()

		// Wait for a Read in progress before closing its file.
		q.readMu.Lock()
		defer q.readMu.Unlock()

		var errs []error
		if q.w.f != nil {
			errs = append(errs, q.w.f.Sync())
		}
		errs = append(errs, q.closeFiles())
		q.closeErr = errors.Join(errs...)
	})
	return q.closeErr
}

func (q *Queue) closeFiles() error {
	var errs []error
	if q.w.f != nil {
		errs = append(errs, q.w.f.Close())
		q.w.f = nil
	}
	q.r.close()
	q.deadMu.Lock()
	if q.deadF != nil {
		errs = append(errs, q.deadF.Close())
		q.deadF = nil
	}
	q.deadMu.Unlock()
	if q.lock != nil {
		errs = append(errs, unlockDir(q.lock))
		q.lock = nil
	}
	return errors.Join(errs...)
}
