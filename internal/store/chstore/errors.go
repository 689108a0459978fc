package chstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// Error is a failed store operation, classified for the flusher: a permanent
// error will fail the same way on every retry of the same batch (bad data),
// anything else (the server unreachable, a timeout, an overloaded server) may
// pass later and the batch should stay queued.
type Error struct {
	Op        string
	Err       error
	permanent bool
}

func (e *Error) Error() string {
	return "chstore: " + e.Op + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error {
	return e.Err
}

// Permanent reports whether retrying the same batch cannot succeed.
func (e *Error) Permanent() bool {
	return e.permanent
}

// IsPermanent reports whether err, or an error it wraps, says it is
// permanent (has a Permanent() bool method returning true). Errors that say
// nothing are treated as transient, so data stays queued.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// Server error codes caused by the data of an insert: the same rows fail the
// same way again. Codes outside this list (TOO_MANY_PARTS, MEMORY_LIMIT_EXCEEDED,
// TIMEOUT_EXCEEDED, UNKNOWN_TABLE, …) depend on the server's state and are
// transient.
var dataErrorCodes = map[int32]bool{
	6:   true, // CANNOT_PARSE_TEXT
	26:  true, // CANNOT_PARSE_QUOTED_STRING
	27:  true, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
	38:  true, // CANNOT_PARSE_DATE
	41:  true, // CANNOT_PARSE_DATETIME
	53:  true, // TYPE_MISMATCH
	69:  true, // ARGUMENT_OUT_OF_BOUND
	70:  true, // CANNOT_CONVERT_TYPE
	72:  true, // CANNOT_PARSE_NUMBER
	117: true, // INCORRECT_DATA
	131: true, // TOO_LARGE_STRING_SIZE
}

// classify wraps err from clickhouse-go as an *Error.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Op: op, Err: err, permanent: isDataError(err)}
}

func isDataError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return dataErrorCodes[ex.Code]
	}
	// Client-side conversion of a value to its column type.
	var convErr *column.ColumnConverterError
	var colErr *column.Error
	return errors.Is(err, clickhouse.ErrBatchInvalid) || errors.As(err, &convErr) || errors.As(err, &colErr)
}

// errorf is fmt.Errorf for a permanent *Error.
func permanentf(op, format string, args ...any) error {
	return &Error{Op: op, Err: fmt.Errorf(format, args...), permanent: true}
}
