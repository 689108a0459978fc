package sqlitestore

import (
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"modernc.org/sqlite"
)

// The distinct counts run in Go aggregates, registered on the driver so that
// every connection the store opens has them:
//
//   - uniq_exact(x) counts the distinct integers and strings of a group,
//     ignoring NULL, like count(DISTINCT x) but with a hash set: SQLite's
//     DISTINCT keeps an ephemeral b-tree per group, which dominated the
//     visitor counts.
//   - uniq_set(id) is the set of a group's distinct integers as a BLOB (the
//     rollups' visitors): sorted, 8 bytes each, little-endian.
//   - uniq_merge(set) counts the distinct integers of the union of sets.
func init() {
	for name, newAgg := range map[string]func() sqlite.AggregateFunction{
		"uniq_exact": func() sqlite.AggregateFunction { return &uniqExact{} },
		"uniq_set":   func() sqlite.AggregateFunction { return &uniqSet{} },
		"uniq_merge": func() sqlite.AggregateFunction { return &uniqMerge{} },
	} {
		sqlite.MustRegisterFunction(name, &sqlite.FunctionImpl{
			NArgs:         1,
			Deterministic: true,
			VolatileArgs:  true, // the aggregates copy what they keep
			MakeAggregate: func(sqlite.FunctionContext) (sqlite.AggregateFunction, error) { return newAgg(), nil },
		})
	}
}

// aggregate holds what the three aggregates share: they are no window
// functions.
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

type uniqSet struct {
	aggregate
	ids []int64
}

func (u *uniqSet) Step(_ *sqlite.FunctionContext, args []driver.Value) error {
	id, ok := args[0].(int64)
	if !ok {
		return fmt.Errorf("uniq_set: want an integer, got %T", args[0])
	}
	u.ids = append(u.ids, id)
	return nil
}

func (u *uniqSet) WindowValue(*sqlite.FunctionContext) (driver.Value, error) {
	slices.Sort(u.ids)
	ids := slices.Compact(u.ids)
	b := make([]byte, 0, 8*len(ids))
	for _, id := range ids {
		b = binary.LittleEndian.AppendUint64(b, uint64(id))
	}
	return b, nil
}

type uniqMerge struct {
	aggregate
	ids idSet
}

func (u *uniqMerge) Step(_ *sqlite.FunctionContext, args []driver.Value) error {
	b, ok := args[0].([]byte)
	if !ok || len(b)%8 != 0 {
		return fmt.Errorf("uniq_merge: not a uniq_set (%T)", args[0])
	}
	for i := 0; i < len(b); i += 8 {
		u.ids.add(binary.LittleEndian.Uint64(b[i:]))
	}
	return nil
}

func (u *uniqMerge) WindowValue(*sqlite.FunctionContext) (driver.Value, error) {
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
	for i := id & mask; ; i = (i + 1) & mask {
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
		i := id & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = id
	}
}
