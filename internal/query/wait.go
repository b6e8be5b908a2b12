package query

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/evbank/bank/internal/dberr"
)

// ErrProjectionLagging is matched (errors.Is) by a *LaggingError: the
// projection did not reach the version asked for in the time allowed.
var ErrProjectionLagging = errors.New("projection lagging")

// LaggingError says how far the projection of one account was when the wait ended.
type LaggingError struct {
	AccountID uuid.UUID
	Want      int           // the version waited for
	Have      int           // the version account_balances held (0: no row yet)
	Waited    time.Duration // how long the wait lasted
}

func (e *LaggingError) Error() string {
	return fmt.Sprintf("projection lagging: account %s is at version %d in the read model after %s, want %d",
		e.AccountID, e.Have, e.Waited.Round(time.Millisecond), e.Want)
}

// Is makes errors.Is(err, ErrProjectionLagging) true.
func (e *LaggingError) Is(target error) bool { return target == ErrProjectionLagging }

// The polling interval of WaitForVersion starts short, since the projector
// usually is a few milliseconds behind, and doubles up to a ceiling that bounds
// both the extra latency and the load of many waiting requests.
const (
	minPoll = time.Millisecond
	maxPoll = 20 * time.Millisecond
)

// WaitForVersion returns nil once account_balances holds account id at
// version or later, polling for at most maxWait. Errors: a *LaggingError
// (ErrProjectionLagging) when the time is up, ctx's error when it ends first,
// database errors.
func (s *Store) WaitForVersion(ctx context.Context, id uuid.UUID, version int, maxWait time.Duration) (err error) {
	defer dberr.Mark(&err)
	start := time.Now()
	deadline := start.Add(maxWait)
	interval := minPoll
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		have, err := s.version(ctx, id)
		if err != nil {
			return err
		}
		if have >= version {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return &LaggingError{AccountID: id, Want: version, Have: have, Waited: time.Since(start)}
		}
		// The last pause ends at the deadline, where one more look is taken.
		pause := min(interval, left)
		if timer == nil {
			timer = time.NewTimer(pause)
		} else {
			timer.Reset(pause)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		interval = min(2*interval, maxPoll)
	}
}

// version is the account's version in account_balances, 0 without a row.
func (s *Store) version(ctx context.Context, id uuid.UUID) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT version FROM account_balances WHERE account_id = $1`, id).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("projected version of %s: %w", id, err)
	}
	return v, nil
}
