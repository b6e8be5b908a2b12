// Package query answers the read side of the API from the projection tables
// (account_balances, transaction_history, daily_summaries, transfers), which the
// projector keeps. It only reads them: nothing here writes a read table, and
// nothing reads the event store.
package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbank/bank/internal/dberr"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/readmodel"
)

// Store runs the read-side queries over the read database.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool, a pool on the read database (READ_DATABASE_URL).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// accountColumns are read in the order scanAccount scans them.
var accountColumns = readmodel.AccountBalances.ColumnList()

// getAccountSQL is GetAccount's statement, built once rather than per call.
var getAccountSQL = `SELECT ` + accountColumns + ` FROM account_balances WHERE account_id = $1`

// accountRow is scanAccount's scan targets, in one allocation: every target
// escapes through Scan's ...any, and as separate variables each was one. The
// id is a pgtype.UUID because a uuid.UUID is a sql.Scanner, which pgx feeds
// through the uuid's text form (format it, parse it back); the times are
// pgtype.Timestamptz because pgx plans a time.Time (and a *time.Time for the
// nullable one) through a wrapper or two, allocated on every row.
type accountRow struct {
	id                      pgtype.UUID
	owner, code, status     string
	balance                 int64
	version                 int
	opened, updated, closed pgtype.Timestamptz
	dest                    [9]any
}

func scanAccount(row pgx.Row) (Account, error) {
	r := new(accountRow)
	r.dest = [9]any{&r.id, &r.owner, &r.code, &r.balance, &r.status, &r.version, &r.opened, &r.updated, &r.closed}
	if err := row.Scan(r.dest[:]...); err != nil {
		return Account{}, err
	}
	cur, err := currency(r.code)
	if err != nil {
		return Account{}, err
	}
	a := Account{
		ID:      r.id.Bytes, // NULL, which the column never is, stays the zero UUID as before
		OwnerID: r.owner, Currency: cur.Code(), Balance: domain.FormatAmount(r.balance, cur),
		Status: r.status, Version: r.version,
	}
	if a.OpenedAt, err = finiteTime(r.opened, "opened_at"); err != nil {
		return Account{}, err
	}
	if a.UpdatedAt, err = finiteTime(r.updated, "updated_at"); err != nil {
		return Account{}, err
	}
	if r.closed.Valid {
		c, err := finiteTime(r.closed, "closed_at")
		if err != nil {
			return Account{}, err
		}
		a.ClosedAt = &c
	}
	return a, nil
}

// finiteTime is t in UTC, or the error a time.Time target gave for what it
// cannot hold: NULL or an infinity (neither of which the projector writes).
func finiteTime(t pgtype.Timestamptz, column string) (time.Time, error) {
	switch {
	case !t.Valid:
		return time.Time{}, fmt.Errorf("%s: cannot scan NULL into a time", column)
	case t.InfinityModifier != pgtype.Finite:
		return time.Time{}, fmt.Errorf("%s: cannot scan an infinite timestamp into a time", column)
	}
	return t.Time.UTC(), nil
}

// GetAccount returns the account as account_balances holds it. Errors:
// domain.ErrAccountNotFound when the projection has no such account.
func (s *Store) GetAccount(ctx context.Context, id uuid.UUID) (_ Account, err error) {
	defer dberr.Mark(&err)
	a, err := scanAccount(s.pool.QueryRow(ctx, getAccountSQL, pgUUID(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, domain.ErrAccountNotFound
	}
	if err != nil {
		return Account{}, fmt.Errorf("get account %s: %w", id, err)
	}
	return a, nil
}

// pgUUID is id as pgx encodes it natively (binary). A uuid.UUID is a
// driver.Valuer: pgx would format it as text and the server parse it back.
func pgUUID(id uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

// AccountFilter selects a page of accounts.
type AccountFilter struct {
	// OwnerID keeps the accounts of one owner; "" keeps all.
	OwnerID string
	// Status keeps active or closed accounts; "" keeps both.
	Status domain.Status
	// After, when set, starts the page after this account id (keyset).
	After *uuid.UUID
	// Limit is the page size, at least 1.
	Limit int
}

// ListAccounts returns a page of accounts in account id order. Errors: only
// database errors.
func (s *Store) ListAccounts(ctx context.Context, f AccountFilter) (_ Page[Account], err error) {
	defer dberr.Mark(&err)
	var (
		where []string
		args  []any
	)
	// Only the predicates in use go into the SQL, so that each combination has
	// a plan that uses its index: (owner_id, account_id), (status, account_id)
	// or the primary key.
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if f.OwnerID != "" {
		add("owner_id = $?", f.OwnerID)
	}
	if f.Status != "" {
		add("status = $?", string(f.Status))
	}
	if f.After != nil {
		add("account_id > $?", pgUUID(*f.After))
	}
	sql := `SELECT ` + accountColumns + ` FROM account_balances`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit+1)
	sql += ` ORDER BY account_id LIMIT $` + strconv.Itoa(len(args))

	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return Page[Account]{}, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	page := Page[Account]{Items: make([]Account, 0, min(f.Limit, 64))}
	for rows.Next() {
		if len(page.Items) == f.Limit {
			page.More = true
			break
		}
		a, err := scanAccount(rows)
		if err != nil {
			return Page[Account]{}, fmt.Errorf("list accounts: %w", err)
		}
		page.Items = append(page.Items, a)
	}
	if err := rows.Err(); err != nil {
		return Page[Account]{}, fmt.Errorf("list accounts: %w", err)
	}
	return page, nil
}

// Transactions returns a page of the account's deposits, withdrawals and
// transfer steps, newest first: those with a version below before (0: from the newest).
// owner, unless "", restricts the answer to an account of that owner.
// Errors: domain.ErrAccountNotFound when account_balances has no such account
// (of that owner).
func (s *Store) Transactions(ctx context.Context, id uuid.UUID, owner string, limit, before int) (_ Page[Transaction], err error) {
	defer dberr.Mark(&err)
	if before <= 0 {
		before = math.MaxInt32
	}
	// One round trip: the account row says whether the account exists and what
	// its currency is; the lateral join brings its page (or one row of nulls).
	rows, err := s.pool.Query(ctx, `
SELECT a.currency, t.event_id, t.type, t.amount_minor, t.description, t.balance_after_minor, t.version, t.occurred_at,
       t.transfer_id, t.counterparty_account_id
FROM account_balances a
LEFT JOIN LATERAL (
    SELECT event_id, type, amount_minor, description, balance_after_minor, version, occurred_at, transfer_id, counterparty_account_id
    FROM transaction_history h
    WHERE h.account_id = a.account_id AND h.version < $2
    ORDER BY h.version DESC
    LIMIT $3
) t ON true
WHERE a.account_id = $1 AND ($4 = '' OR a.owner_id = $4)
ORDER BY t.version DESC`, pgUUID(id), before, limit+1, owner)
	if err != nil {
		return Page[Transaction]{}, fmt.Errorf("transactions of %s: %w", id, err)
	}
	defer rows.Close()
	var (
		found bool
		cur   domain.Currency
		page  = Page[Transaction]{Items: make([]Transaction, 0, min(limit, 64))}
	)
	for rows.Next() {
		var (
			code        string
			eventID     *uuid.UUID
			typ, desc   *string
			amount, bal *int64
			version     *int
			occurredAt  *time.Time
			transfer    *uuid.UUID
			party       *uuid.UUID
		)
		if err := rows.Scan(&code, &eventID, &typ, &amount, &desc, &bal, &version, &occurredAt, &transfer, &party); err != nil {
			return Page[Transaction]{}, fmt.Errorf("transactions of %s: %w", id, err)
		}
		if !found {
			found = true
			if cur, err = currency(code); err != nil {
				return Page[Transaction]{}, err
			}
		}
		if eventID == nil {
			continue // the account has no movement in range
		}
		if len(page.Items) == limit {
			page.More = true
			break
		}
		page.Items = append(page.Items, Transaction{
			EventID: *eventID, Type: *typ, Amount: domain.FormatAmount(*amount, cur), Description: *desc,
			BalanceAfter: domain.FormatAmount(*bal, cur), Version: *version, OccurredAt: occurredAt.UTC(),
			TransferID: transfer, CounterpartyAccountID: party,
		})
	}
	if err := rows.Err(); err != nil {
		return Page[Transaction]{}, fmt.Errorf("transactions of %s: %w", id, err)
	}
	if !found {
		return Page[Transaction]{}, domain.ErrAccountNotFound
	}
	return page, nil
}

// DailySummaries returns the account's daily summaries from from to to, both
// UTC dates and both included, in date order; days without movements have
// none. owner, unless "", restricts the answer to an account of that owner.
// Errors: domain.ErrAccountNotFound when account_balances has no such account
// (of that owner).
func (s *Store) DailySummaries(ctx context.Context, id uuid.UUID, owner string, from, to time.Time) (_ []DailySummary, err error) {
	defer dberr.Mark(&err)
	rows, err := s.pool.Query(ctx, `
SELECT a.currency, d.day, d.deposits_count, d.deposits_total_minor::text, d.withdrawals_count,
       d.withdrawals_total_minor::text, d.closing_balance_minor,
       d.transfers_in_count, d.transfers_in_total_minor::text, d.transfers_out_count, d.transfers_out_total_minor::text
FROM account_balances a
LEFT JOIN LATERAL (
    SELECT day, deposits_count, deposits_total_minor, withdrawals_count, withdrawals_total_minor, closing_balance_minor,
           transfers_in_count, transfers_in_total_minor, transfers_out_count, transfers_out_total_minor
    FROM daily_summaries s
    WHERE s.account_id = a.account_id AND s.day BETWEEN $2::date AND $3::date
) d ON true
WHERE a.account_id = $1 AND ($4 = '' OR a.owner_id = $4)
ORDER BY d.day`, pgUUID(id), utcDate(from), utcDate(to), owner)
	if err != nil {
		return nil, fmt.Errorf("daily summaries of %s: %w", id, err)
	}
	defer rows.Close()
	var (
		found bool
		cur   domain.Currency
		items = []DailySummary{}
	)
	for rows.Next() {
		var (
			code              string
			day               *time.Time
			depCount, wdCount *int
			depTotal, wdTotal *string // numeric: a day's totals may pass 2^63
			closing           *int64
			inCount, outCount *int
			inTotal, outTotal *string
		)
		if err := rows.Scan(&code, &day, &depCount, &depTotal, &wdCount, &wdTotal, &closing, &inCount, &inTotal, &outCount, &outTotal); err != nil {
			return nil, fmt.Errorf("daily summaries of %s: %w", id, err)
		}
		if !found {
			found = true
			if cur, err = currency(code); err != nil {
				return nil, err
			}
		}
		if day == nil {
			continue // no day in range
		}
		var totals [4]string
		for i, t := range []string{*depTotal, *wdTotal, *inTotal, *outTotal} {
			v, err := domain.ParseTotal(t)
			if err != nil {
				return nil, fmt.Errorf("daily summaries of %s: %s", id, err.Error()) // a broken table, not the client's input
			}
			totals[i] = domain.FormatTotal(v, cur)
		}
		items = append(items, DailySummary{
			Date:          day.Format(DateLayout),
			DepositsCount: *depCount, DepositsTotal: totals[0],
			WithdrawalsCount: *wdCount, WithdrawalsTotal: totals[1],
			TransfersInCount: *inCount, TransfersInTotal: totals[2],
			TransfersOutCount: *outCount, TransfersOutTotal: totals[3],
			ClosingBalance: domain.FormatAmount(*closing, cur),
		})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("daily summaries of %s: %w", id, err)
	}
	if !found {
		return nil, domain.ErrAccountNotFound
	}
	return items, nil
}

// utcDate is t's calendar date as UTC midnight: what a date parameter encodes.
func utcDate(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Summary counts the accounts by status and totals the balances and the
// pending transfers (in_flight) per currency, in currency order, from one
// snapshot of account_balances and transfers (one statement). Totals are
// summed as numeric and printed from its decimal form, exact whatever their
// size. A currency with pending transfers but no account row yet (the
// transfers projection ahead of account_balances) is listed with zero
// accounts rather than dropped, so that in_flight never hides money.
func (s *Store) Summary(ctx context.Context) (_ Summary, err error) {
	defer dberr.Mark(&err)
	rows, err := s.pool.Query(ctx, `
WITH b AS (
    SELECT currency,
           count(*) AS total,
           count(*) FILTER (WHERE status = 'active') AS active,
           count(*) FILTER (WHERE status = 'closed') AS closed,
           sum(balance_minor::numeric) AS balance
    FROM account_balances
    GROUP BY currency
), f AS (
    SELECT currency, sum(amount_minor::numeric) AS in_flight
    FROM transfers
    WHERE status = 'pending'
    GROUP BY currency
)
SELECT coalesce(b.currency, f.currency), coalesce(b.total, 0), coalesce(b.active, 0), coalesce(b.closed, 0),
       coalesce(b.balance, 0)::text, coalesce(f.in_flight, 0)::text
FROM b FULL JOIN f ON f.currency = b.currency
ORDER BY 1`)
	if err != nil {
		return Summary{}, fmt.Errorf("summary: %w", err)
	}
	defer rows.Close()
	sum := Summary{Balances: []CurrencyTotal{}}
	for rows.Next() {
		var (
			code                  string
			total, active, closed int64
			balance, inFlight     string
		)
		if err := rows.Scan(&code, &total, &active, &closed, &balance, &inFlight); err != nil {
			return Summary{}, fmt.Errorf("summary: %w", err)
		}
		cur, err := currency(code)
		if err != nil {
			return Summary{}, err
		}
		formatted, err := domain.FormatMinorDecimal(balance, cur)
		if err != nil {
			return Summary{}, fmt.Errorf("summary of %s: %w", code, err)
		}
		flight, err := domain.FormatMinorDecimal(inFlight, cur)
		if err != nil {
			return Summary{}, fmt.Errorf("summary of %s: in flight: %w", code, err)
		}
		sum.Accounts.Total += total
		sum.Accounts.Active += active
		sum.Accounts.Closed += closed
		sum.Balances = append(sum.Balances, CurrencyTotal{Currency: code, Total: formatted, InFlight: flight})
	}
	if err := rows.Err(); err != nil {
		return Summary{}, fmt.Errorf("summary: %w", err)
	}
	return sum, nil
}

// TransferCursor is where a page of transfers starts: after this transfer in
// newest-first order (created_at, then id, both descending).
type TransferCursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// AccountTransfers returns a page of the transfers the account sent or
// received, newest first (created_at, then transfer id, descending), after
// after (nil: from the newest). owner, unless "", restricts the answer to an
// account of that owner. Errors: domain.ErrAccountNotFound when
// account_balances has no such account (of that owner).
func (s *Store) AccountTransfers(ctx context.Context, id uuid.UUID, owner string, limit int, after *TransferCursor) (_ Page[Transfer], err error) {
	defer dberr.Mark(&err)
	// Without a cursor the page starts past every real key, so that both
	// cases are the same row comparison, which the indexes answer.
	at, afterID := pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}, uuid.Max
	if after != nil {
		at, afterID = pgtype.Timestamptz{Time: after.CreatedAt, Valid: true}, after.ID
	}
	// One round trip, as Transactions: the account row decides whether it
	// exists (for this owner); each direction is one scan of its index in key
	// order, and the merge of the two takes the newest.
	rows, err := s.pool.Query(ctx, `
SELECT t.transfer_id, t.from_account_id, t.to_account_id, t.amount_minor, t.currency, t.description,
       t.status, t.reason, t.created_at, t.completed_at
FROM account_balances a
LEFT JOIN LATERAL (
    (SELECT * FROM transfers
     WHERE from_account_id = a.account_id AND (created_at, transfer_id) < ($2, $3)
     ORDER BY created_at DESC, transfer_id DESC LIMIT $4)
    UNION ALL
    (SELECT * FROM transfers
     WHERE to_account_id = a.account_id AND (created_at, transfer_id) < ($2, $3)
     ORDER BY created_at DESC, transfer_id DESC LIMIT $4)
) t ON true
WHERE a.account_id = $1 AND ($5 = '' OR a.owner_id = $5)
ORDER BY t.created_at DESC, t.transfer_id DESC
LIMIT $4`, pgUUID(id), at, pgUUID(afterID), limit+1, owner)
	if err != nil {
		return Page[Transfer]{}, fmt.Errorf("transfers of %s: %w", id, err)
	}
	defer rows.Close()
	var (
		found bool
		page  = Page[Transfer]{Items: make([]Transfer, 0, min(limit, 64))}
	)
	for rows.Next() {
		var (
			tid, from, to *uuid.UUID
			amount        *int64
			code, desc    *string
			status        *string
			reason        *string
			created       *time.Time
			completed     *time.Time
		)
		if err := rows.Scan(&tid, &from, &to, &amount, &code, &desc, &status, &reason, &created, &completed); err != nil {
			return Page[Transfer]{}, fmt.Errorf("transfers of %s: %w", id, err)
		}
		found = true
		if tid == nil {
			continue // the account has no transfer in range
		}
		if len(page.Items) == limit {
			page.More = true
			break
		}
		cur, err := currency(*code)
		if err != nil {
			return Page[Transfer]{}, err
		}
		t := Transfer{
			ID: *tid, FromAccountID: *from, ToAccountID: *to, Amount: domain.FormatAmount(*amount, cur), Currency: cur.Code(),
			Description: *desc, Status: *status, Reason: reason, CreatedAt: created.UTC(),
		}
		if completed != nil {
			c := completed.UTC()
			t.CompletedAt = &c
		}
		page.Items = append(page.Items, t)
	}
	if err := rows.Err(); err != nil {
		return Page[Transfer]{}, fmt.Errorf("transfers of %s: %w", id, err)
	}
	if !found {
		return Page[Transfer]{}, domain.ErrAccountNotFound
	}
	return page, nil
}
