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
	// Behind, when set, names a projection still behind account_balances
	// after account_balances reached Want (see WaitForCheckpoint).
	Behind string
}

func (e *LaggingError) Error() string {
	if e.Behind != "" {
		return fmt.Sprintf("projection lagging: account %s is at version %d in account_balances but %s is behind it after %s",
			e.AccountID, e.Have, e.Behind, e.Waited.Round(time.Millisecond))
	}
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
	err := s.pool.QueryRow(ctx, `SELECT version FROM account_balances WHERE account_id = $1`, pgUUID(id)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("projected version of %s: %w", id, err)
	}
	return v, nil
}

// WaitForVersionIn is WaitForVersion for a query of another projection's
// table: once account_balances holds the version, it also waits, within the
// same maxWait, until projection's checkpoint has reached account_balances'
// (read after the version was). The Runner commits every projection's share
// of a batch together, so this is at once true but while projection catches
// up alone (new, or rebuilt from zero). Errors: as WaitForVersion, and a
// *LaggingError naming projection when it does not catch up in time.
func (s *Store) WaitForVersionIn(ctx context.Context, projection string, id uuid.UUID, version int, maxWait time.Duration) (err error) {
	defer dberr.Mark(&err)
	start := time.Now()
	if err := s.WaitForVersion(ctx, id, version, maxWait); err != nil {
		return err
	}
	deadline := start.Add(maxWait)
	interval := minPoll
	for {
		caught, err := s.caughtUpWithBalances(ctx, projection)
		if err != nil || caught {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return &LaggingError{AccountID: id, Want: version, Have: version, Waited: time.Since(start), Behind: projection}
		}
		t := time.NewTimer(min(interval, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		interval = min(2*interval, maxPoll)
	}
}

// caughtUpWithBalances says whether projection's checkpoint is at or past
// account_balances'; a projection without a row is at position zero.
func (s *Store) caughtUpWithBalances(ctx context.Context, projection string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `
SELECT coalesce(p.transaction_id, '0') > b.transaction_id
    OR (coalesce(p.transaction_id, '0') = b.transaction_id AND coalesce(p.global_position, 0) >= b.global_position)
FROM projection_checkpoints b
LEFT JOIN projection_checkpoints p ON p.projection = $1
WHERE b.projection = 'account_balances'`, projection).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, nil // no account_balances checkpoint: nothing to be behind
	}
	if err != nil {
		return false, fmt.Errorf("checkpoint of %s: %w", projection, err)
	}
	return ok, nil
}
