package dberr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/evbank/bank/internal/dberr"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	// A real connection failure: nothing listens on a port just closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	_ = ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, refused := pgx.Connect(ctx, fmt.Sprintf("postgres://u@127.0.0.1:%d/db?connect_timeout=5", addr.Port))
	if refused == nil {
		t.Fatal("connected to a closed port")
	}

	tests := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"nil", nil, false},
		{"connection refused", refused, true},
		{"connection refused, wrapped", fmt.Errorf("load: %w", refused), true},
		{"net error", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("reset")}, true},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"connection exception", &pgconn.PgError{Code: "08000"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"query canceled", &pgconn.PgError{Code: "57014"}, false},
		{"no rows", pgx.ErrNoRows, false},
		{"client hung up", context.Canceled, false},
		{"client hung up while connecting", fmt.Errorf("%w: %w", refused, context.Canceled), false},
		{"request deadline while connecting", fmt.Errorf("%w: %w", refused, context.DeadlineExceeded), false},
		{"another error", errors.New("boom"), false},
	}
	for _, tc := range tests {
		got := dberr.Classify(tc.err)
		if is := errors.Is(got, dberr.ErrUnavailable); is != tc.unavailable {
			t.Errorf("%s: errors.Is(Classify(err), ErrUnavailable) = %v, want %v", tc.name, is, tc.unavailable)
		}
		if dberr.IsUnavailable(tc.err) != tc.unavailable {
			t.Errorf("%s: IsUnavailable = %v, want %v", tc.name, !tc.unavailable, tc.unavailable)
		}
		if tc.err != nil && !errors.Is(got, tc.err) {
			t.Errorf("%s: Classify lost the original error", tc.name)
		}
		if !tc.unavailable && !sameError(got, tc.err) {
			t.Errorf("%s: Classify changed an error it does not mark", tc.name)
		}
	}

	var err2 error = &pgconn.PgError{Code: "57P01"}
	dberr.Mark(&err2)
	if !errors.Is(err2, dberr.ErrUnavailable) || !sameError(dberr.Classify(err2), err2) {
		t.Error("Mark does not mark, or marks twice")
	}
}

// sameError reports whether a and b are the very same error value: what
// Classify must hand back unchanged (errors.Is would accept a wrapper).
func sameError(a, b error) bool { return a == b } //nolint:errorlint // identity is the point
