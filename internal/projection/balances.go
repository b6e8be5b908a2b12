package projection

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/readmodel"
)

// AccountBalancesName is the name of the account_balances projection.
const AccountBalancesName = "account_balances"

// balances projects account_balances: one row per account, its state after
// its last event, folded with the aggregate's own Apply. It is the projection
// that checks that each stream's versions arrive contiguous from 1.
type balances struct{}

// AccountBalances returns the account_balances projection.
func AccountBalances() Projection { return balances{} }

func (balances) Name() string                  { return AccountBalancesName }
func (balances) Tables() []readmodel.Table     { return []readmodel.Table{readmodel.AccountBalances} }
func (balances) NewCache(limit int) Cache      { return newStateCache[domain.AccountState](limit) }
func (balances) Bulk() BulkFold                { return &balancesBulk{accounts: map[uuid.UUID]*domain.Account{}} }
func (balances) table(names TableNames) string { return names(readmodel.AccountBalances) }

// applyBalance folds e onto a, refusing an event that would skip or reorder
// the stream's events, or a stream that does not start with AccountOpened.
func applyBalance(a *domain.Account, e eventlog.RecordedEvent) error {
	if e.Version != a.Version()+1 {
		return &ContiguityError{Projection: AccountBalancesName, StreamID: e.StreamID, Have: a.Version(), Got: e.Version, Position: eventlog.PositionOf(e)}
	}
	if err := checkFirst(a.Version(), e); err != nil {
		return err
	}
	a.Apply(e.Event, e.RecordedAt)
	return nil
}

// balanceValues is st as a row of account_balances, in the table's column order.
func balanceValues(st domain.AccountState, v []any) {
	var closed *time.Time
	if !st.ClosedAt.IsZero() {
		closed = &st.ClosedAt
	}
	// COPY encodes a [16]byte uuid directly; a uuid.UUID would go through its
	// text form, which costs more than the rest of the row.
	v[0], v[1], v[2], v[3], v[4] = [16]byte(st.ID), st.OwnerID, st.Currency, st.BalanceMinor, string(st.Status)
	v[5], v[6], v[7], v[8] = int32(st.Version), st.OpenedAt, st.UpdatedAt, closed
}

// scanBalances reads account_balances rows as states, calling fn with each.
func scanBalances(rows pgx.Rows, fn func(domain.AccountState) error) error {
	var (
		st       domain.AccountState
		closedAt *time.Time
	)
	_, err := pgx.ForEachRow(rows, []any{&st.ID, &st.OwnerID, &st.Currency, &st.BalanceMinor, &st.Status, &st.Version, &st.OpenedAt, &st.UpdatedAt, &closedAt}, func() error {
		s := st
		if closedAt != nil {
			s.ClosedAt = *closedAt
		}
		return fn(s)
	})
	return err
}

// accountOf is the aggregate a row holds, to fold the next events onto.
func accountOf(st domain.AccountState) (*domain.Account, error) {
	a, err := domain.AccountFromState(st)
	if err != nil {
		return nil, fmt.Errorf("%w: projection %s: row of account %s cannot be folded onto: %w", ErrInconsistent, AccountBalancesName, st.ID, err)
	}
	return a, nil
}

type balancesBatch struct {
	table  string
	ids    []uuid.UUID
	events []eventlog.RecordedEvent
	cache  *stateCache[domain.AccountState]
	prior  map[uuid.UUID]domain.AccountState
	final  map[uuid.UUID]domain.AccountState
}

func (p balances) Batch(events []eventlog.RecordedEvent, names TableNames, c Cache) Batch {
	return &balancesBatch{table: p.table(names), ids: accountsOf(events), events: events, cache: cacheOf[domain.AccountState](c)}
}

func (w *balancesBatch) Committed() { w.cache.putAll(w.final) }

func (w *balancesBatch) QueueLoad(b *pgx.Batch) {
	var missing []uuid.UUID
	w.prior, missing = split(w.cache, w.ids)
	if len(missing) == 0 {
		return
	}
	b.Queue(`SELECT `+readmodel.AccountBalances.ColumnList()+` FROM `+ident(w.table)+` WHERE account_id = ANY($1)`, missing).
		Query(func(rows pgx.Rows) error {
			err := scanBalances(rows, func(st domain.AccountState) error {
				w.prior[st.ID] = st
				return nil
			})
			if err != nil {
				return fmt.Errorf("projection %s: load: %w", AccountBalancesName, err)
			}
			return nil
		})
}

func (w *balancesBatch) Fold() error {
	accounts := make(map[uuid.UUID]*domain.Account, len(w.ids))
	for _, id := range w.ids {
		a := domain.NewAccount(id)
		if st, ok := w.prior[id]; ok {
			var err error
			if a, err = accountOf(st); err != nil {
				return err
			}
		}
		accounts[id] = a
	}
	for _, e := range w.events {
		if err := applyBalance(accounts[e.StreamID], e); err != nil {
			return err
		}
	}
	w.final = make(map[uuid.UUID]domain.AccountState, len(w.ids))
	for _, id := range w.ids {
		st := accounts[id].State()
		st.ID = id
		w.final[id] = st
	}
	return nil
}

func (w *balancesBatch) QueueWrite(b *pgx.Batch) {
	n := len(w.ids)
	var (
		ids                 = make([]uuid.UUID, n)
		owners, curs, stats = make([]string, n), make([]string, n), make([]string, n)
		balances            = make([]int64, n)
		versions            = make([]int32, n)
		opened, updated     = make([]time.Time, n), make([]time.Time, n)
		closed              = make([]*time.Time, n)
	)
	for i, id := range w.ids {
		st := w.final[id]
		ids[i], owners[i], curs[i], stats[i] = id, st.OwnerID, st.Currency, string(st.Status)
		balances[i], versions[i] = st.BalanceMinor, int32(st.Version)
		opened[i], updated[i] = st.OpenedAt, st.UpdatedAt
		if !st.ClosedAt.IsZero() {
			c := st.ClosedAt
			closed[i] = &c
		}
	}
	// The WHERE makes a row that did not move forward count as not written.
	b.Queue(`INSERT INTO `+ident(w.table)+` AS t (`+readmodel.AccountBalances.ColumnList()+`)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::int[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
ON CONFLICT (account_id) DO UPDATE SET
    owner_id = excluded.owner_id, currency = excluded.currency, balance_minor = excluded.balance_minor,
    status = excluded.status, version = excluded.version, opened_at = excluded.opened_at,
    updated_at = excluded.updated_at, closed_at = excluded.closed_at
WHERE t.version < excluded.version`,
		ids, owners, curs, balances, stats, versions, opened, updated, closed).Exec(expectRows(AccountBalancesName, w.table, n))
}

// balancesBulk holds every account's aggregate.
type balancesBulk struct {
	accounts map[uuid.UUID]*domain.Account
}

func (f *balancesBulk) Apply(e eventlog.RecordedEvent, _ bool) error {
	a := f.accounts[e.StreamID]
	if a == nil {
		a = domain.NewAccount(e.StreamID)
		f.accounts[e.StreamID] = a
	}
	return applyBalance(a, e)
}

func (f *balancesBulk) Stream() []Rows { return nil }

// checksStreams: applyBalance refuses a gap and a stream that does not open.
func (f *balancesBulk) checksStreams() {}

func (f *balancesBulk) Size() int { return len(f.accounts) }

func (f *balancesBulk) Save(ctx context.Context, replace func(context.Context, Rows) error) error {
	ids := make([]uuid.UUID, 0, len(f.accounts))
	for id := range f.accounts {
		ids = append(ids, id)
	}
	return replace(ctx, Rows{Table: readmodel.AccountBalances, N: len(ids), Fill: func(i int, v []any) {
		st := f.accounts[ids[i]].State()
		st.ID = ids[i]
		balanceValues(st, v)
	}})
}

func (f *balancesBulk) Restore(ctx context.Context, q Queryer, names TableNames) error {
	rows, err := q.Query(ctx, `SELECT `+readmodel.AccountBalances.ColumnList()+` FROM `+ident(names(readmodel.AccountBalances)))
	if err != nil {
		return err
	}
	return scanBalances(rows, func(st domain.AccountState) error {
		a, err := accountOf(st)
		if err != nil {
			return err
		}
		f.accounts[st.ID] = a
		return nil
	})
}
