package localq

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/queue"
)

// readChunk is the initial size of the reader's buffer; it grows to fit a
// record larger than that.
const readChunk = 1 << 20

// reader is the consumer's cursor, guarded by Queue.readMu.
type reader struct {
	at  pos // next entry to hand out
	f   *os.File
	seg uint64 // segment f belongs to
	buf []byte
}

func (r *reader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// pendingEntry is an entry handed out and not yet acknowledged.
type pendingEntry struct {
	start, end pos
	t          int64 // event time, unix nanoseconds
	skipped    bool  // undecodable: dead-lettered by Read, never handed out
}

// Read hands out up to max entries after the read cursor, waiting at most
// wait for the first one. It returns an empty slice when nothing arrived in
// time and ctx.Err() when ctx ends first.
//
// Deliveries is 1 for an entry read for the first time. Entries handed out
// by an earlier process and not acknowledged before it stopped get the
// number of earlier deliveries plus one; the read position is persisted
// with every Read, so this is exact for entries of the last read before a
// crash and an upper bound for older ones.
//
// Payloads are binary-encoded events, or JSON ones written by versions
// before the binary format. An entry whose payload is neither (damage the
// checksum cannot see, or a format from a newer version) is written to the
// dead-letter log and skipped.
func (q *Queue) Read(ctx context.Context, max int, wait time.Duration) ([]queue.Message, error) {
	if max <= 0 {
		return nil, nil
	}
	q.readMu.Lock()
	defer q.readMu.Unlock()

	var timeout <-chan time.Time
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, ErrClosed
		}
		last := q.segs[len(q.segs)-1]
		available := q.normalizeLocked(q.r.at).less(pos{last.id, last.size})
		notify := q.notify
		q.mu.Unlock()

		if available {
			break
		}
		if wait <= 0 {
			return nil, nil
		}
		if timeout == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-notify:
		case <-timeout:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-q.closing:
			return nil, ErrClosed
		}
	}

	msgs, err := q.readAvailable(max)
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return msgs, nil
	}
	q.ckMu.Lock()
	err = q.writeCheckpointLocked(false)
	q.ckMu.Unlock()
	if err != nil {
		// Only delivery counting after a crash depends on it.
		q.opts.Logger.Warn("localq: saving the read position", "error", err)
	}
	return msgs, nil
}

// readAvailable reads up to max committed entries from the cursor on.
func (q *Queue) readAvailable(max int) ([]queue.Message, error) {
	r := &q.r
	if r.buf == nil {
		r.buf = make([]byte, readChunk)
	}
	msgs := make([]queue.Message, 0, min(max, 1024))
	var entries []pendingEntry
	var skipped []skippedRecord

	for len(msgs) < max {
		q.mu.Lock()
		cur, sealed, next := q.segmentLocked(r.at.seg)
		var seg segment // a snapshot: the writer grows the live one
		if cur != nil {
			seg = *cur
		}
		q.mu.Unlock()
		if cur == nil {
			if next == 0 {
				break
			}
			r.at = pos{next, 0}
			continue
		}
		if r.at.off >= seg.size {
			if !sealed {
				break // caught up with the writer
			}
			r.at = pos{next, 0}
			continue
		}

		if r.f == nil || r.seg != seg.id {
			r.close()
			f, err := os.Open(segmentPath(q.dir, seg.id))
			if err != nil {
				return nil, fmt.Errorf("localq: %w", err)
			}
			r.f, r.seg = f, seg.id
		}
		n := int(min(seg.size-r.at.off, int64(len(r.buf))))
		if _, err := r.f.ReadAt(r.buf[:n], r.at.off); err != nil && err != io.EOF {
			return nil, fmt.Errorf("localq: read segment %d: %w", seg.id, err)
		}

		b := r.buf[:n]
		p := 0
		for len(msgs) < max && p < len(b) {
			payload, size, need, err := parseRecord(b[p:])
			if err == nil && size == 0 && r.at.off+int64(p+need) > seg.size {
				err = errCorrupt // committed data never ends inside a record
			}
			if err != nil {
				r.at.off = q.skipDamaged(cur, r.at.off+int64(p), len(entries))
				p = -1
				break
			}
			if size == 0 {
				if p == 0 {
					r.buf = make([]byte, need)
				}
				break
			}
			start := pos{seg.id, r.at.off + int64(p)}
			end := pos{seg.id, start.off + int64(size)}
			p += size

			var ev event.Event
			if err := ev.UnmarshalBinary(payload); err != nil {
				skipped = append(skipped, skippedRecord{id: formatID(start), payload: slices.Clone(payload), err: err})
				entries = append(entries, pendingEntry{start: start, end: end, skipped: true})
				continue
			}
			msgs = append(msgs, queue.Message{
				ID:         formatID(start),
				Deliveries: q.deliveries(start),
				Event:      ev,
			})
			entries = append(entries, pendingEntry{start: start, end: end, t: ev.Time.UnixNano()})
		}
		if p >= 0 {
			r.at.off += int64(p)
		}
	}

	if len(skipped) > 0 {
		q.deadLetterRaw(skipped)
	}

	q.mu.Lock()
	q.pending = append(q.pending, entries...)
	q.npending += int64(len(msgs))
	q.readAt = r.at
	q.popSkippedLocked()
	q.mu.Unlock()
	return msgs, nil
}

// skipDamaged handles a record that fails its checksum in data that was
// whole when committed (the disk changed under us): the reader skips to the
// segment's committed end and the backlog count is rebuilt. read is the
// number of entries the current Read took but has not registered yet. It
// returns the new read offset.
func (q *Queue) skipDamaged(seg *segment, off int64, read int) int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.opts.Logger.Error("localq: damaged record, skipping the rest of the segment",
		"segment", seg.id, "offset", off, "bytes", seg.size-off)
	unread := int64(0)
	for _, s := range q.segs {
		if s.id <= seg.id {
			continue
		}
		if res, err := scanSegment(segmentPath(q.dir, s.id), 0, s.size); err == nil {
			unread += res.count
		}
	}
	q.length = int64(len(q.pending)-q.phead+read) + unread
	return seg.size
}

// deliveries returns the delivery count of the entry at p handed out now.
func (q *Queue) deliveries(p pos) int {
	if p.less(q.prevRead) {
		return q.prevDeliveries + 1
	}
	return 1
}

// segmentLocked finds the segment with the given id. It also returns
// whether the segment is sealed and the id of the segment after it (or of
// the first segment after id when id no longer exists; 0 when none).
func (q *Queue) segmentLocked(id uint64) (seg *segment, sealed bool, next uint64) {
	for i, s := range q.segs {
		if s.id < id {
			continue
		}
		if s.id > id {
			return nil, false, s.id
		}
		if i+1 < len(q.segs) {
			return s, true, q.segs[i+1].id
		}
		return s, false, 0
	}
	return nil, false, 0
}

// normalizeLocked moves a position at the end of a sealed segment to the
// start of the next one.
func (q *Queue) normalizeLocked(p pos) pos {
	for {
		seg, sealed, next := q.segmentLocked(p.seg)
		if seg == nil && next != 0 {
			p = pos{next, 0}
			continue
		}
		if seg != nil && sealed && p.off >= seg.size {
			p = pos{next, 0}
			continue
		}
		return p
	}
}

// Ack acknowledges every handed-out entry up to the highest position among
// msgs (the consumer acknowledges in order). Entries already acknowledged
// are ignored; an id that was never handed out is an error. Segments whose
// entries are all acknowledged are deleted.
func (q *Queue) Ack(ctx context.Context, msgs []queue.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	var hi pos
	for _, m := range msgs {
		p, err := parseID(m.ID)
		if err != nil {
			return err
		}
		if hi.less(p) {
			hi = p
		}
	}

	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if q.phead == len(q.pending) || hi.less(q.pending[q.phead].start) {
		q.mu.Unlock()
		return nil // acknowledged before
	}
	if q.pending[len(q.pending)-1].start.less(hi) {
		q.mu.Unlock()
		return fmt.Errorf("localq: ack of %s, which was not handed out", formatID(hi))
	}
	for q.phead < len(q.pending) && !hi.less(q.pending[q.phead].start) {
		q.popLocked()
	}
	q.popSkippedLocked()
	q.mu.Unlock()

	q.ckMu.Lock()
	defer q.ckMu.Unlock()
	if err := q.writeCheckpointLocked(true); err != nil {
		return err
	}
	return q.removeAcked()
}

// popLocked acknowledges the first pending entry.
func (q *Queue) popLocked() {
	e := q.pending[q.phead]
	q.pending[q.phead] = pendingEntry{}
	q.phead++
	if !e.skipped {
		q.npending--
	}
	q.length--
	q.ack = q.normalizeLocked(e.end)
	if q.phead == len(q.pending) {
		q.pending, q.phead = q.pending[:0], 0
	} else if q.phead > 4096 && q.phead > len(q.pending)/2 {
		q.pending = append(q.pending[:0], q.pending[q.phead:]...)
		q.phead = 0
	}
}

// popSkippedLocked acknowledges dead-lettered entries once everything
// before them is acknowledged.
func (q *Queue) popSkippedLocked() {
	for q.phead < len(q.pending) && q.pending[q.phead].skipped {
		q.popLocked()
	}
}

// removeAcked deletes the segments before the acknowledged position. The
// caller holds ckMu, so that a backup holding it sees no file vanish.
func (q *Queue) removeAcked() error {
	q.mu.Lock()
	var ids []uint64
	for len(q.segs) > 1 && q.segs[0].id < q.ack.seg {
		ids = append(ids, q.segs[0].id)
		q.segs = q.segs[1:]
	}
	q.mu.Unlock()
	for _, id := range ids {
		if err := os.Remove(segmentPath(q.dir, id)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("localq: %w", err)
		}
	}
	return nil
}

// formatID renders a position as a message id, "segment-offset".
func formatID(p pos) string {
	b := make([]byte, 0, 24)
	b = strconv.AppendUint(b, p.seg, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, p.off, 10)
	return string(b)
}

func parseID(id string) (pos, error) {
	s, o, ok := strings.Cut(id, "-")
	seg, err1 := strconv.ParseUint(s, 10, 64)
	off, err2 := strconv.ParseInt(o, 10, 64)
	if !ok || err1 != nil || err2 != nil || off < 0 {
		return pos{}, fmt.Errorf("localq: invalid message id %q", id)
	}
	return pos{seg, off}, nil
}
