package sqlitestore

import (
	"bytes"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"modernc.org/sqlite"
)

// The distinct counts run in Go, registered on the driver so that every
// connection the store opens has them:
//
//   - uniq_exact(x) counts the distinct integers and strings of a group,
//     ignoring NULL, like count(DISTINCT x) but with hash sets: SQLite's
//     DISTINCT keeps an ephemeral b-tree per group, which dominated the
//     visitor counts.
//   - uniq_delta(id, sign) is the counted set of a group's ids (see
//     counted), each counted sign times per row: what the group adds to
//     (sign 1) or takes from (-1) a rollup's visitors.
//   - uniq_add(a, b) is the sum of two counted sets, without the ids whose
//     count comes to 0.
//   - uniq_merge(set) counts the distinct ids with a positive count in the
//     counted sets of a group.
func init() {
	for name, newAgg := range map[string]func() sqlite.AggregateFunction{
		"uniq_exact": func() sqlite.AggregateFunction { return &uniqExact{} },
		"uniq_delta": func() sqlite.AggregateFunction { return &uniqDelta{counts: map[int64]int32{}} },
		"uniq_merge": func() sqlite.AggregateFunction { return &uniqMerge{} },
	} {
		n := int32(1)
		if name == "uniq_delta" {
			n = 2
		}
		sqlite.MustRegisterFunction(name, &sqlite.FunctionImpl{
			NArgs:         n,
			Deterministic: true,
			VolatileArgs:  true, // the aggregates copy what they keep
			MakeAggregate: func(sqlite.FunctionContext) (sqlite.AggregateFunction, error) { return newAgg(), nil },
		})
	}
	sqlite.MustRegisterFunction("uniq_add", &sqlite.FunctionImpl{
		NArgs:         2,
		Deterministic: true,
		VolatileArgs:  true,
		Scalar: func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			a, err := countedArg(args[0])
			if err != nil {
				return nil, err
			}
			b, err := countedArg(args[1])
			if err != nil {
				return nil, err
			}
			if len(b) == 0 {
				return a, nil // the driver copies it out
			}
			return addCounted(a, b), nil
		},
	})
}

// A counted set is a BLOB of (id, count) pairs in ascending id order, 12
// bytes each: the id as 8 bytes and its count as 4, little-endian. A
// rollup keeps its visitors so, counting each one's visits, so that taking
// a visit away (when it changes) drops the visitor only with its last one.
const pairSize = 12

func appendPair(b []byte, id int64, n int32) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(id))
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

func pairAt(b []byte, i int) (int64, int32) {
	return int64(binary.LittleEndian.Uint64(b[i:])), int32(binary.LittleEndian.Uint32(b[i+8:]))
}

// countedArg is a counted set argument; NULL is the empty set.
func countedArg(v driver.Value) ([]byte, error) {
	switch b := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		if len(b)%pairSize == 0 {
			return b, nil
		}
	}
	return nil, fmt.Errorf("not a counted set (%T)", v)
}

// addCounted merges two counted sets into a new one.
func addCounted(a, b []byte) []byte {
	out := make([]byte, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ia, na := pairAt(a, i)
		ib, nb := pairAt(b, j)
		switch {
		case ia < ib:
			out = append(out, a[i:i+pairSize]...)
			i += pairSize
		case ib < ia:
			out = append(out, b[j:j+pairSize]...)
			j += pairSize
		default:
			if n := na + nb; n != 0 {
				out = appendPair(out, ia, n)
			}
			i, j = i+pairSize, j+pairSize
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// aggregate holds what the aggregates share: they are no window functions.
type aggregate struct{}

func (aggregate) WindowInverse(*sqlite.FunctionContext, []driver.Value) error {
	return errors.New("not a window function")
}

func (aggregate) Final(*sqlite.FunctionContext) {}

type uniqExact struct {
	aggregate
	ints map[int64]struct{}
	strs map[string]struct{}
}

func (u *uniqExact) Step(_ *sqlite.FunctionContext, args []driver.Value) error {
	switch v := args[0].(type) {
	case nil:
	case int64:
		if u.ints == nil {
			u.ints = map[int64]struct{}{}
		}
		u.ints[v] = struct{}{}
	case string:
		if u.strs == nil {
			u.strs = map[string]struct{}{}
		}
		if _, ok := u.strs[v]; !ok {
			u.strs[strings.Clone(v)] = struct{}{}
		}
	default:
		return fmt.Errorf("uniq_exact: unsupported value of type %T", v)
	}
	return nil
}

func (u *uniqExact) WindowValue(*sqlite.FunctionContext) (driver.Value, error) {
	return int64(len(u.ints) + len(u.strs)), nil
}

type uniqDelta struct {
	aggregate
	counts map[int64]int32
}

func (u *uniqDelta) Step(_ *sqlite.FunctionContext, args []driver.Value) error {
	id, ok := args[0].(int64)
	sign, ok2 := args[1].(int64)
	if !ok || !ok2 {
		return fmt.Errorf("uniq_delta: want integers, got %T and %T", args[0], args[1])
	}
	u.counts[id] += int32(sign)
	return nil
}

func (u *uniqDelta) WindowValue(*sqlite.FunctionContext) (driver.Value, error) {
	ids := make([]int64, 0, len(u.counts))
	for id, n := range u.counts {
		if n != 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	b := make([]byte, 0, pairSize*len(ids))
	for _, id := range ids {
		b = appendPair(b, id, u.counts[id])
	}
	return b, nil
}

type uniqMerge struct {
	aggregate
	ids   idSet
	first []byte // the only set so far, counted without a table
	sets  int
}

func (u *uniqMerge) Step(_ *sqlite.FunctionContext, args []driver.Value) error {
	b, err := countedArg(args[0])
	if err != nil {
		return fmt.Errorf("uniq_merge: %w", err)
	}
	if u.sets++; u.sets == 1 {
		u.first = bytes.Clone(b)
		return nil
	}
	if u.first != nil {
		u.addAll(u.first)
		u.first = nil
	}
	u.addAll(b)
	return nil
}

func (u *uniqMerge) addAll(b []byte) {
	for i := 0; i < len(b); i += pairSize {
		if id, n := pairAt(b, i); n > 0 {
			u.ids.add(uint64(id))
		}
	}
}

func (u *uniqMerge) WindowValue(*sqlite.FunctionContext) (driver.Value, error) {
	if u.sets == 1 {
		n := 0
		for i := 0; i < len(u.first); i += pairSize {
			if _, c := pairAt(u.first, i); c > 0 {
				n++
			}
		}
		return int64(n), nil
	}
	return int64(u.ids.n), nil
}

// idSet is a set of visitor ids, which are hashes already: an open
// addressing table indexed by their low bits, several times faster to fill
// than a map. Slot value 0 marks an empty slot; id 0 is kept aside.
type idSet struct {
	slots []uint64
	n     int
	zero  bool
}

func (s *idSet) add(id uint64) {
	if id == 0 {
		if !s.zero {
			s.zero = true
			s.n++
		}
		return
	}
	if 2*(s.n+1) > len(s.slots) {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := mix(id) & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case id:
			return
		case 0:
			s.slots[i] = id
			s.n++
			return
		}
	}
}

func (s *idSet) grow() {
	old := s.slots
	s.slots = make([]uint64, max(1024, 2*len(old)))
	mask := uint64(len(s.slots) - 1)
	for _, id := range old {
		if id == 0 {
			continue
		}
		i := mix(id) & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = id
	}
}

// mix spreads ids whose low bits are alike (tests use small ones).
func mix(id uint64) uint64 {
	id ^= id >> 33
	id *= 0xff51afd7ed558ccd
	return id ^ id>>33
}
