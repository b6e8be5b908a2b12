// Package query answers the read side of the API from the projection tables
// (account_balances, transaction_history, daily_summaries), which the
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
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbank/bank/internal/dberr"
	"github.com/evbank/bank/internal/domain"
)

// Store runs the read-side queries over the read database.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool, a pool on the read database (READ_DATABASE_URL).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const accountColumns = `account_id, owner_id, currency, balance_minor, status, version, opened_at, updated_at, closed_at`

func scanAccount(row pgx.Row) (Account, error) {
	var (
		a        Account
		code     string
		balance  int64
		closedAt *time.Time
	)
	if err := row.Scan(&a.ID, &a.OwnerID, &code, &balance, &a.Status, &a.Version, &a.OpenedAt, &a.UpdatedAt, &closedAt); err != nil {
		return Account{}, err
	}
	cur, err := currency(code)
	if err != nil {
		return Account{}, err
	}
	a.Currency = cur.Code()
	a.Balance = domain.FormatAmount(balance, cur)
	a.OpenedAt, a.UpdatedAt = a.OpenedAt.UTC(), a.UpdatedAt.UTC()
	if closedAt != nil {
		c := closedAt.UTC()
		a.ClosedAt = &c
	}
	return a, nil
}

// GetAccount returns the account as account_balances holds it. Errors:
// domain.ErrAccountNotFound when the projection has no such account.
func (s *Store) GetAccount(ctx context.Context, id uuid.UUID) (_ Account, err error) {
	defer dberr.Mark(&err)
	a, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM account_balances WHERE account_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, domain.ErrAccountNotFound
	}
	if err != nil {
		return Account{}, fmt.Errorf("get account %s: %w", id, err)
	}
	return a, nil
}

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
		add("account_id > $?", *f.After)
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

// Transactions returns a page of the account's deposits and withdrawals,
// newest first: those with a version below before (0: from the newest).
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
SELECT a.currency, t.event_id, t.type, t.amount_minor, t.description, t.balance_after_minor, t.version, t.occurred_at
FROM account_balances a
LEFT JOIN LATERAL (
    SELECT event_id, type, amount_minor, description, balance_after_minor, version, occurred_at
    FROM transaction_history h
    WHERE h.account_id = a.account_id AND h.version < $2
    ORDER BY h.version DESC
    LIMIT $3
) t ON true
WHERE a.account_id = $1 AND ($4 = '' OR a.owner_id = $4)
ORDER BY t.version DESC`, id, before, limit+1, owner)
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
		)
		if err := rows.Scan(&code, &eventID, &typ, &amount, &desc, &bal, &version, &occurredAt); err != nil {
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
SELECT a.currency, d.day, d.deposits_count, d.deposits_total_minor, d.withdrawals_count,
       d.withdrawals_total_minor, d.closing_balance_minor
FROM account_balances a
LEFT JOIN LATERAL (
    SELECT day, deposits_count, deposits_total_minor, withdrawals_count, withdrawals_total_minor, closing_balance_minor
    FROM daily_summaries s
    WHERE s.account_id = a.account_id AND s.day BETWEEN $2::date AND $3::date
) d ON true
WHERE a.account_id = $1 AND ($4 = '' OR a.owner_id = $4)
ORDER BY d.day`, id, utcDate(from), utcDate(to), owner)
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
			code                       string
			day                        *time.Time
			depCount, wdCount          *int
			depTotal, wdTotal, closing *int64
		)
		if err := rows.Scan(&code, &day, &depCount, &depTotal, &wdCount, &wdTotal, &closing); err != nil {
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
		items = append(items, DailySummary{
			Date:          day.Format(DateLayout),
			DepositsCount: *depCount, DepositsTotal: domain.FormatAmount(*depTotal, cur),
			WithdrawalsCount: *wdCount, WithdrawalsTotal: domain.FormatAmount(*wdTotal, cur),
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

// Summary counts the accounts by status and totals the balances per currency,
// in currency order, from one snapshot of account_balances. Totals are summed
// as numeric and printed from its decimal form, exact whatever their size.
func (s *Store) Summary(ctx context.Context) (_ Summary, err error) {
	defer dberr.Mark(&err)
	rows, err := s.pool.Query(ctx, `
SELECT currency,
       count(*),
       count(*) FILTER (WHERE status = 'active'),
       count(*) FILTER (WHERE status = 'closed'),
       sum(balance_minor::numeric)::text
FROM account_balances
GROUP BY currency
ORDER BY currency`)
	if err != nil {
		return Summary{}, fmt.Errorf("summary: %w", err)
	}
	defer rows.Close()
	sum := Summary{Balances: []CurrencyTotal{}}
	for rows.Next() {
		var (
			code                  string
			total, active, closed int64
			balance               string
		)
		if err := rows.Scan(&code, &total, &active, &closed, &balance); err != nil {
			return Summary{}, fmt.Errorf("summary: %w", err)
		}
		cur, err := currency(code)
		if err != nil {
			return Summary{}, err
		}
		formatted, err := formatMinorDecimal(balance, cur)
		if err != nil {
			return Summary{}, fmt.Errorf("summary of %s: %w", code, err)
		}
		sum.Accounts.Total += total
		sum.Accounts.Active += active
		sum.Accounts.Closed += closed
		sum.Balances = append(sum.Balances, CurrencyTotal{Currency: code, Total: formatted})
	}
	if err := rows.Err(); err != nil {
		return Summary{}, fmt.Errorf("summary: %w", err)
	}
	return sum, nil
}
