package store

import "errors"

// Permanent marks an error that retrying the same insert cannot fix (a value
// the store rejects, a malformed event), as opposed to a connectivity or
// capacity error (store down, disk full, timeout) that a later retry may
// clear. The flusher retries the latter forever and sets entries that keep
// failing with the former aside in the dead-letter log.
type Permanent interface {
	Permanent() bool
}

// IsPermanent reports whether err, or any error it wraps, is marked
// permanent. Unclassified errors are treated as transient: a wrong guess then
// stalls the pipeline instead of dropping data.
func IsPermanent(err error) bool {
	var p Permanent
	return errors.As(err, &p) && p.Permanent()
}

// PermanentError wraps err so that IsPermanent reports true for it.
// It returns nil for a nil err.
func PermanentError(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Permanent() bool { return true }

// ErrUnavailable is returned by queries while the store cannot be reached
// (ClickHouse down at start); the analytics API answers 503 for it.
var ErrUnavailable = errors.New("the analytics store is not reachable")

// ErrTimeout is returned by a query cut at its deadline; the analytics API
// answers 503 for it rather than holding the connection.
var ErrTimeout = errors.New("the analytics query took too long")
