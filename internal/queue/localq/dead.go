package localq

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/event"
	"github.com/pocketlytics/pocketlytics/internal/queue"
)

const (
	deadDir  = "dead"
	deadFile = "dead.jsonl"
)

// DeadLetter is one line of dead/dead.jsonl.
type DeadLetter struct {
	Time       time.Time    `json:"time"` // when it was set aside
	ID         string       `json:"id"`
	Deliveries int          `json:"deliveries,omitempty"`
	Error      string       `json:"error"`
	Event      *event.Event `json:"event,omitempty"`

	// Payload is a record that did not decode, its bytes (base64 in the
	// JSON line).
	Payload []byte `json:"payload,omitempty"`
}

type skippedRecord struct {
	id      string
	payload []byte
	err     error
}

// DeadLetter appends the messages with the cause to dead/dead.jsonl (one
// JSON object a line, see the DeadLetter type, with the event as JSON for
// the operator whatever the queue's record format). It does not acknowledge
// them: acks are positional, so the consumer acks them with the rest of its
// batch once the entries before them are stored.
func (q *Queue) DeadLetter(ctx context.Context, msgs []queue.Message, cause error) error {
	if len(msgs) == 0 {
		return nil
	}
	text := "unknown error"
	if cause != nil {
		text = cause.Error()
	}
	now := time.Now().UTC()
	lines := make([]DeadLetter, len(msgs))
	for i := range msgs {
		lines[i] = DeadLetter{Time: now, ID: msgs[i].ID, Deliveries: msgs[i].Deliveries, Error: text, Event: &msgs[i].Event}
	}
	return q.appendDead(lines)
}

// deadLetterRaw sets aside records that did not decode.
func (q *Queue) deadLetterRaw(recs []skippedRecord) {
	now := time.Now().UTC()
	lines := make([]DeadLetter, len(recs))
	for i, r := range recs {
		lines[i] = DeadLetter{Time: now, ID: r.id, Error: "decode: " + r.err.Error(), Payload: r.payload}
		q.opts.Logger.Error("localq: undecodable entry moved to the dead-letter log", "id", r.id, "error", r.err)
	}
	if err := q.appendDead(lines); err != nil {
		q.opts.Logger.Error("localq: writing dead letters", "error", err)
	}
}

func (q *Queue) appendDead(lines []DeadLetter) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range lines {
		if err := enc.Encode(&lines[i]); err != nil {
			return fmt.Errorf("localq: encode dead letter: %w", err)
		}
	}

	q.deadMu.Lock()
	defer q.deadMu.Unlock()
	if q.deadF == nil {
		f, err := os.OpenFile(filepath.Join(q.dir, deadDir, deadFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("localq: %w", err)
		}
		q.deadF = f
	}
	if _, err := q.deadF.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("localq: write dead letter: %w", err)
	}
	if q.opts.Fsync {
		if err := q.deadF.Sync(); err != nil {
			return fmt.Errorf("localq: sync dead letters: %w", err)
		}
	}

	q.mu.Lock()
	q.dead += int64(len(lines))
	q.mu.Unlock()
	return nil
}

// countDeadLetters counts the lines of the dead-letter log.
func countDeadLetters(dir string) (int64, error) {
	f, err := os.Open(filepath.Join(dir, deadDir, deadFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("localq: %w", err)
	}
	defer f.Close()
	var n int64
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		b, err := br.ReadSlice('\n')
		if len(b) > 0 && b[len(b)-1] == '\n' {
			n++
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return n, fmt.Errorf("localq: %w", err)
		}
	}
}
