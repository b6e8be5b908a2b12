// Package dberr tells a database that cannot be reached apart from every other
// database failure, so that the HTTP layer can answer 503 unavailable (DESIGN
// §2) without knowing the driver. The store and the read-side queries pass
// their errors through Classify at their boundary.
package dberr

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrUnavailable is matched (errors.Is) by every error Classify marks: the
// database could not be reached, refused the connection, or went away. The
// request may be retried; a command whose outcome is unknown may have been
// applied, which is what Idempotency-Key retries are for.
var ErrUnavailable = errors.New("database unavailable")

// Classify returns err marked as ErrUnavailable when it says the database
// cannot be reached, else err unchanged. The mark keeps the driver's error
// (errors.As and the log still see it); it is never shown to clients.
func Classify(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || !unreachable(err) {
		return err
	}
	return &unavailableError{err: err}
}

// IsUnavailable reports whether err (after Classify, or a raw driver error)
// says the database cannot be reached.
func IsUnavailable(err error) bool {
	return err != nil && (errors.Is(err, ErrUnavailable) || unreachable(err))
}

func unreachable(err error) bool {
	// A client that hung up is not an outage, whatever the driver was doing;
	// nor is the request's own deadline passing (that is its timeout, which
	// the caller reports as such).
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var (
		connect *pgconn.ConnectError
		pgErr   *pgconn.PgError
		netErr  net.Error
	)
	switch {
	case errors.As(err, &connect):
		return true
	case errors.As(err, &pgErr):
		return unavailableCode(pgErr.Code)
	case errors.As(err, &netErr):
		return true
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		// The server closed the connection under a running statement.
		return true
	}
	return false
}

// unavailableCode: class 08 (connection exception), the server shutting down
// or starting (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
// cannot_connect_now) and 53300 too_many_connections. All say "not now",
// nothing about the request.
func unavailableCode(code string) bool {
	switch code {
	case "57P01", "57P02", "57P03", "53300":
		return true
	}
	return len(code) == 5 && code[:2] == "08"
}

type unavailableError struct{ err error }

func (e *unavailableError) Error() string        { return "database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() error        { return e.err }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// Mark is Classify for a deferred call on a named error result:
//
//	func (s *Store) Get(ctx context.Context) (_ Row, err error) {
//		defer dberr.Mark(&err)
func Mark(err *error) { *err = Classify(*err) }
