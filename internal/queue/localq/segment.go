package localq

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pocketlytics/pocketlytics/internal/event"
)

const (
	segmentExt = ".seg"

	// headerSize is the frame header: payload length and its CRC32C.
	headerSize = 8

	// maxRecord bounds a payload; a larger length in a header is damage,
	// not a record (an event is a few hundred bytes).
	maxRecord = 16 << 20
)

var (
	crcTable   = crc32.MakeTable(crc32.Castagnoli)
	errCorrupt = errors.New("localq: corrupt record")
)

// pos is a position in the log: a segment id and a byte offset in it.
type pos struct {
	seg uint64
	off int64
}

func (p pos) less(o pos) bool {
	return p.seg < o.seg || (p.seg == o.seg && p.off < o.off)
}

// segment is one segment file; size is the end of its last whole record.
type segment struct {
	id   uint64
	size int64
}

func segmentPath(dir string, id uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", id, segmentExt))
}

// listSegments returns the ids of the segment files in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("localq: %w", err)
	}
	var ids []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segmentExt)
		if !ok || e.IsDir() {
			continue
		}
		id, err := strconv.ParseUint(name, 10, 64)
		if err != nil || id == 0 {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

func createSegment(dir string, id uint64, fsync bool) (*os.File, error) {
	f, err := os.OpenFile(segmentPath(dir, id), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("localq: %w", err)
	}
	if fsync {
		// Make the new directory entry durable too.
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

func openSegmentForAppend(dir string, id uint64) (*os.File, error) {
	f, err := os.OpenFile(segmentPath(dir, id), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("localq: %w", err)
	}
	return f, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("localq: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("localq: sync %s: %w", dir, err)
	}
	return nil
}

// appendRecord appends payload framed with its length and checksum.
func appendRecord(dst, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, headerSize)...)
	dst = append(dst, payload...)
	sealRecord(dst[start:])
	return dst
}

// sealRecord fills in the header of rec, a record whose payload follows
// headerSize reserved bytes.
func sealRecord(rec []byte) {
	payload := rec[headerSize:]
	binary.LittleEndian.PutUint32(rec, uint32(len(payload)))
	binary.LittleEndian.PutUint32(rec[4:], crc32.Checksum(payload, crcTable))
}

// parseRecord parses the record at the start of b. It returns the payload
// and the record's total size, or size 0 and the size needed when b holds
// only part of the record, or errCorrupt.
func parseRecord(b []byte) (payload []byte, size int, need int, err error) {
	if len(b) < headerSize {
		return nil, 0, headerSize, nil
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxRecord {
		return nil, 0, 0, errCorrupt
	}
	size = headerSize + int(n)
	if len(b) < size {
		return nil, 0, size, nil
	}
	payload = b[headerSize:size]
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, 0, errCorrupt
	}
	return payload, size, 0, nil
}

type scanResult struct {
	start int64 // first record boundary at or after the requested offset
	end   int64 // end of the last whole, valid record
	size  int64 // file size
	count int64 // valid records starting at or after start
}

// scanSegment walks the records of a segment file from its beginning and
// stops at the first torn or damaged one, or at limit when limit >= 0.
func scanSegment(path string, from, limit int64) (scanResult, error) {
	var res scanResult
	f, err := os.Open(path)
	if err != nil {
		return res, fmt.Errorf("localq: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return res, fmt.Errorf("localq: %w", err)
	}
	res.size = st.Size()

	br := bufio.NewReaderSize(f, 1<<20)
	var hdr [headerSize]byte
	var payload []byte
	startSet := false
	for {
		if !startSet && res.end >= from {
			res.start, startSet = res.end, true
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return res, fmt.Errorf("localq: %w", err)
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n == 0 || n > maxRecord {
			break
		}
		payload = slices.Grow(payload[:0], int(n))[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return res, fmt.Errorf("localq: %w", err)
		}
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			break
		}
		if limit >= 0 && res.end+headerSize+int64(n) > limit {
			break
		}
		if startSet {
			res.count++
		}
		res.end += headerSize + int64(n)
	}
	if !startSet {
		res.start = res.end
	}
	return res, nil
}

// readEventAt decodes the record at p, for Stats.
func readEventAt(dir string, p pos) (event.Event, error) {
	var ev event.Event
	f, err := os.Open(segmentPath(dir, p.seg))
	if err != nil {
		return ev, err
	}
	defer f.Close()
	var hdr [headerSize]byte
	if _, err := f.ReadAt(hdr[:], p.off); err != nil {
		return ev, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n == 0 || n > maxRecord {
		return ev, errCorrupt
	}
	b := make([]byte, headerSize+int(n))
	if _, err := f.ReadAt(b, p.off); err != nil {
		return ev, err
	}
	payload, _, _, err := parseRecord(b)
	if err != nil {
		return ev, err
	}
	return ev, ev.UnmarshalBinary(payload)
}
