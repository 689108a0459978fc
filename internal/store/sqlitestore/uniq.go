package sqlitestore

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"modernc.org/sqlite"
)

// uniq_exact(x) counts the distinct integers and strings of a group, ignoring
// NULL, like count(DISTINCT x) but with hash sets: SQLite's DISTINCT keeps an
// ephemeral b-tree per group, which dominated the visitor counts. It is
// registered on the driver, so every connection the store opens has it.
func init() {
	sqlite.MustRegisterFunction("uniq_exact", &sqlite.FunctionImpl{
		NArgs:         1,
		Deterministic: true,
		VolatileArgs:  true, // the aggregate copies what it keeps
		MakeAggregate: func(sqlite.FunctionContext) (sqlite.AggregateFunction, error) { return &uniqExact{}, nil },
	})
}

type uniqExact struct {
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

func (*uniqExact) WindowInverse(*sqlite.FunctionContext, []driver.Value) error {
	return errors.New("uniq_exact: not a window function")
}

func (*uniqExact) Final(*sqlite.FunctionContext) {}
