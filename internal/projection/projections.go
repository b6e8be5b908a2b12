package projection

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
)

// Names of the projections: their checkpoint rows and their default tables.
const (
	AccountBalancesName    = "account_balances"
	TransactionHistoryName = "transaction_history"
	DailySummariesName     = "daily_summaries"
)

// CheckpointTable holds one row per projection: the position of the last event
// it applied, committed with its writes.
const CheckpointTable = "projection_checkpoints"

// Projection is one read table kept up to date by a Runner. Each folds a batch
// from the state already in its own table, so the three are independent: each
// has its own checkpoint and could lag or be rebuilt alone.
type Projection struct {
	name  string
	table string
	kind  kind
}

type kind int

const (
	balancesKind kind = iota
	historyKind
	dailyKind
)

// Name is the projection's name, the key of its checkpoint row.
func (p *Projection) Name() string { return p.name }

// Table is the table the projection writes.
func (p *Projection) Table() string { return p.table }

// AccountBalances projects account_balances: one row per account, its state
// after its last event. It checks that each stream's versions arrive contiguous.
func AccountBalances() *Projection { return accountBalancesInto(AccountBalancesName) }

// TransactionHistory projects transaction_history: one row per deposit or
// withdrawal, with the balance after it.
func TransactionHistory() *Projection { return transactionHistoryInto(TransactionHistoryName) }

// DailySummaries projects daily_summaries: per account and UTC day of
// recorded_at, counts and totals of deposits and withdrawals and the closing balance.
func DailySummaries() *Projection { return dailySummariesInto(DailySummariesName) }

// The *Into constructors write another table of the same shape under the same
// checkpoint name, for a rebuild into fresh tables beside the live ones.
func accountBalancesInto(table string) *Projection {
	return &Projection{name: AccountBalancesName, table: table, kind: balancesKind}
}

func transactionHistoryInto(table string) *Projection {
	return &Projection{name: TransactionHistoryName, table: table, kind: historyKind}
}

func dailySummariesInto(table string) *Projection {
	return &Projection{name: DailySummariesName, table: table, kind: dailyKind}
}

// All returns the three projections.
func All() []*Projection {
	return []*Projection{AccountBalances(), TransactionHistory(), DailySummaries()}
}

// work is one projection's share of one batch: it reads the prior state of the
// batch's accounts, folds the events onto it in memory and writes the result
// set-based. Reads and writes are queued into pipelined pgx batches.
type work interface {
	queueLoad(b *pgx.Batch)
	fold() error
	queueWrite(b *pgx.Batch)
	// committed records the batch's resulting states in the cache.
	committed()
}

func (p *Projection) newWork(events []eventlog.RecordedEvent, c *caches) work {
	ids := accountsOf(events)
	table := pgx.Identifier{p.table}.Sanitize()
	switch p.kind {
	case balancesKind:
		return &balancesWork{p: p, table: table, ids: ids, events: events, cache: c.balances}
	case historyKind:
		return &historyWork{movementsWork: movementsWork{p: p, table: table, ids: ids, events: events, cache: c.history}}
	default:
		return &dailyWork{movementsWork: movementsWork{p: p, table: table, ids: ids, events: events, cache: c.daily}}
	}
}

// split returns the states of ids that cache holds, and the ids it does not.
func split[T any](cache *stateCache[T], ids []uuid.UUID) (map[uuid.UUID]T, []uuid.UUID) {
	have := make(map[uuid.UUID]T, len(ids))
	var missing []uuid.UUID
	for _, id := range ids {
		if v, ok := cache.get(id); ok {
			have[id] = v
		} else {
			missing = append(missing, id)
		}
	}
	return have, missing
}

// accountsOf returns the distinct streams of events.
func accountsOf(events []eventlog.RecordedEvent) []uuid.UUID {
	seen := make(map[uuid.UUID]bool, len(events))
	var ids []uuid.UUID
	for _, e := range events {
		if !seen[e.StreamID] {
			seen[e.StreamID] = true
			ids = append(ids, e.StreamID)
		}
	}
	return ids
}

// expectRows makes a write that must touch n rows fail loudly otherwise.
func expectRows(p *Projection, n int) func(pgconn.CommandTag) error {
	return func(ct pgconn.CommandTag) error {
		if got := ct.RowsAffected(); got != int64(n) {
			return fmt.Errorf("%w: projection %s: %d rows written to %s, expected %d", ErrInconsistent, p.name, got, p.table, n)
		}
		return nil
	}
}

// money returns the movement an event makes, if any.
func money(e domain.Event) (typ string, amount int64, currency, description string, ok bool) {
	switch ev := e.(type) {
	case domain.MoneyDeposited:
		return TypeDeposit, ev.AmountMinor, ev.Currency, ev.Description, true
	case domain.MoneyWithdrawn:
		return TypeWithdrawal, ev.AmountMinor, ev.Currency, ev.Description, true
	}
	return "", 0, "", "", false
}

// --- account_balances ---

type balancesWork struct {
	p      *Projection
	table  string
	ids    []uuid.UUID
	events []eventlog.RecordedEvent
	cache  *stateCache[domain.AccountState]
	prior  map[uuid.UUID]domain.AccountState
	final  map[uuid.UUID]domain.AccountState
	rows   []AccountBalance
}

func (w *balancesWork) committed() { w.cache.putAll(w.final) }

func (w *balancesWork) queueLoad(b *pgx.Batch) {
	var missing []uuid.UUID
	w.prior, missing = split(w.cache, w.ids)
	if len(missing) == 0 {
		return
	}
	b.Queue(`SELECT account_id, owner_id, currency, balance_minor, status, version, opened_at, updated_at, closed_at
FROM `+w.table+` WHERE account_id = ANY($1)`, missing).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				st       domain.AccountState
				closedAt *time.Time
			)
			if err := rows.Scan(&st.ID, &st.OwnerID, &st.Currency, &st.BalanceMinor, &st.Status, &st.Version, &st.OpenedAt, &st.UpdatedAt, &closedAt); err != nil {
				return fmt.Errorf("projection %s: load: %w", w.p.name, err)
			}
			if closedAt != nil {
				st.ClosedAt = *closedAt
			}
			w.prior[st.ID] = st
		}
		return rows.Err()
	})
}

func (w *balancesWork) fold() error {
	accounts := make(map[uuid.UUID]*domain.Account, len(w.ids))
	for _, id := range w.ids {
		a := domain.NewAccount(id)
		if st, ok := w.prior[id]; ok {
			var err error
			if a, err = domain.AccountFromState(st); err != nil {
				return fmt.Errorf("%w: projection %s: row of account %s cannot be folded onto: %w", ErrInconsistent, w.p.name, id, err)
			}
		}
		accounts[id] = a
	}
	for _, e := range w.events {
		a := accounts[e.StreamID]
		if e.Version != a.Version()+1 {
			return &ContiguityError{Projection: w.p.name, StreamID: e.StreamID, Have: a.Version(), Got: e.Version, Position: eventlog.PositionOf(e)}
		}
		if err := checkFirst(a.Version(), e); err != nil {
			return err
		}
		a.Apply(e.Event, e.RecordedAt)
	}
	w.rows = make([]AccountBalance, 0, len(w.ids))
	w.final = make(map[uuid.UUID]domain.AccountState, len(w.ids))
	for _, id := range w.ids {
		w.rows = append(w.rows, balanceRow(id, accounts[id]))
		w.final[id] = accounts[id].State()
	}
	return nil
}

func (w *balancesWork) queueWrite(b *pgx.Batch) {
	n := len(w.rows)
	var (
		ids                 = make([]uuid.UUID, n)
		owners, curs, stats = make([]string, n), make([]string, n), make([]string, n)
		balances            = make([]int64, n)
		versions            = make([]int32, n)
		opened, updated     = make([]time.Time, n), make([]time.Time, n)
		closed              = make([]*time.Time, n)
	)
	for i, r := range w.rows {
		ids[i], owners[i], curs[i], stats[i] = r.AccountID, r.OwnerID, r.Currency, r.Status
		balances[i], versions[i] = r.BalanceMinor, int32(r.Version)
		opened[i], updated[i], closed[i] = r.OpenedAt, r.UpdatedAt, r.ClosedAt
	}
	// The WHERE makes a row that did not move forward count as not written.
	b.Queue(`INSERT INTO `+w.table+` AS t (account_id, owner_id, currency, balance_minor, status, version, opened_at, updated_at, closed_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::int[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
ON CONFLICT (account_id) DO UPDATE SET
    owner_id = excluded.owner_id, currency = excluded.currency, balance_minor = excluded.balance_minor,
    status = excluded.status, version = excluded.version, opened_at = excluded.opened_at,
    updated_at = excluded.updated_at, closed_at = excluded.closed_at
WHERE t.version < excluded.version`,
		ids, owners, curs, balances, stats, versions, opened, updated, closed).Exec(expectRows(w.p, n))
}

// --- transaction_history ---

// streamState is what the history and daily projections fold onto: the
// version of the account's last movement they hold and the balance after it.
type streamState struct {
	version int
	balance int64
}

// movementsWork is what the history and daily projections share: the state
// they fold onto is the version and balance of the account's last movement.
type movementsWork struct {
	p      *Projection
	table  string
	ids    []uuid.UUID
	events []eventlog.RecordedEvent
	cache  *stateCache[streamState]
	prior  map[uuid.UUID]streamState
	final  map[uuid.UUID]streamState
}

func (w *movementsWork) committed() { w.cache.putAll(w.final) }

// queueLoadLatest reads, for the accounts not in the cache, the latest row by
// the column version: one index probe each.
func (w *movementsWork) queueLoadLatest(b *pgx.Batch, versionCol, balanceCol string) {
	var missing []uuid.UUID
	w.prior, missing = split(w.cache, w.ids)
	if len(missing) == 0 {
		return
	}
	b.Queue(`SELECT a.id, t.`+versionCol+`, t.`+balanceCol+`
FROM unnest($1::uuid[]) AS a(id)
CROSS JOIN LATERAL (SELECT `+versionCol+`, `+balanceCol+` FROM `+w.table+`
                    WHERE account_id = a.id ORDER BY `+versionCol+` DESC LIMIT 1) AS t`, missing).Query(scanStreamStates(w.p, w.prior))
}

type historyWork struct {
	movementsWork
	rows []Transaction
}

func (w *historyWork) queueLoad(b *pgx.Batch) {
	w.queueLoadLatest(b, "version", "balance_after_minor")
}

func scanStreamStates(p *Projection, into map[uuid.UUID]streamState) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				id uuid.UUID
				st streamState
			)
			if err := rows.Scan(&id, &st.version, &st.balance); err != nil {
				return fmt.Errorf("projection %s: load: %w", p.name, err)
			}
			into[id] = st
		}
		return rows.Err()
	}
}

// foldMovements walks events over the prior states, calling fn for each
// deposit or withdrawal with the balance after it. The table holds movements
// only, so it can check that versions increase, not that they are contiguous;
// account_balances checks that, and the Runner checks each batch.
func (w *movementsWork) foldMovements(fn func(e eventlog.RecordedEvent, typ string, amount int64, currency, description string, balanceAfter int64) error) error {
	p, prior, events := w.p, w.prior, w.events
	states := make(map[uuid.UUID]streamState, len(prior))
	for _, e := range events {
		st, ok := states[e.StreamID]
		if !ok {
			st = prior[e.StreamID]
		}
		if e.Version <= st.version {
			return &ContiguityError{Projection: p.name, StreamID: e.StreamID, Have: st.version, Got: e.Version, Position: eventlog.PositionOf(e)}
		}
		st.version = e.Version
		if typ, amount, cur, desc, ok := money(e.Event); ok {
			if typ == TypeDeposit {
				st.balance += amount
			} else {
				st.balance -= amount
			}
			if err := fn(e, typ, amount, cur, desc, st.balance); err != nil {
				return fmt.Errorf("projection %s: event at %s of stream %s: %w", p.name, eventlog.PositionOf(e), e.StreamID, err)
			}
		}
		states[e.StreamID] = st
	}
	w.final = states
	return nil
}

func (w *historyWork) fold() error {
	w.rows = w.rows[:0]
	return w.foldMovements(func(e eventlog.RecordedEvent, typ string, amount int64, cur, desc string, after int64) error {
		w.rows = append(w.rows, Transaction{
			EventID: e.EventID, AccountID: e.StreamID, Type: typ, AmountMinor: amount, Currency: cur,
			Description: desc, BalanceAfterMinor: after, Version: e.Version, OccurredAt: e.RecordedAt,
		})
		return nil
	})
}

func (w *historyWork) queueWrite(b *pgx.Batch) {
	n := len(w.rows)
	if n == 0 {
		return
	}
	var (
		eventIDs, accountIDs   = make([]uuid.UUID, n), make([]uuid.UUID, n)
		types, curs, descs     = make([]string, n), make([]string, n), make([]string, n)
		amounts, balancesAfter = make([]int64, n), make([]int64, n)
		versions               = make([]int32, n)
		occurred               = make([]time.Time, n)
	)
	for i, r := range w.rows {
		eventIDs[i], accountIDs[i], types[i], curs[i], descs[i] = r.EventID, r.AccountID, r.Type, r.Currency, r.Description
		amounts[i], balancesAfter[i], versions[i], occurred[i] = r.AmountMinor, r.BalanceAfterMinor, int32(r.Version), r.OccurredAt
	}
	b.Queue(`INSERT INTO `+w.table+` (event_id, account_id, type, amount_minor, currency, description, balance_after_minor, version, occurred_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[], $8::int[], $9::timestamptz[])`,
		eventIDs, accountIDs, types, amounts, curs, descs, balancesAfter, versions, occurred).Exec(expectRows(w.p, n))
}

// --- daily_summaries ---

type dailyWork struct {
	movementsWork
	rows []DailySummary
}

func (w *dailyWork) queueLoad(b *pgx.Batch) {
	// The latest movement by version, not by day: a clock stepping back must
	// not make an older balance look current. The primary key narrows the scan
	// to the account's days; a cache miss only.
	w.queueLoadLatest(b, "last_version", "closing_balance_minor")
}

func (w *dailyWork) fold() error {
	days := map[DayKey]int{} // index into w.rows
	w.rows = w.rows[:0]
	return w.foldMovements(func(e eventlog.RecordedEvent, typ string, amount int64, cur, _ string, after int64) error {
		key := DayKey{AccountID: e.StreamID, Day: UTCDay(e.RecordedAt)}
		i, ok := days[key]
		if !ok {
			i = len(w.rows)
			days[key] = i
			w.rows = append(w.rows, DailySummary{AccountID: key.AccountID, Day: key.Day})
		}
		d := &w.rows[i]
		d.Currency = cur
		d.ClosingBalanceMinor, d.LastVersion = after, e.Version
		return d.add(typ, amount)
	})
}

func (w *dailyWork) queueWrite(b *pgx.Batch) {
	n := len(w.rows)
	if n == 0 {
		return
	}
	var (
		ids                 = make([]uuid.UUID, n)
		days                = make([]time.Time, n)
		curs                = make([]string, n)
		depCounts, wdCounts = make([]int32, n), make([]int32, n)
		depTotals, wdTotals = make([]string, n), make([]string, n)
		closing             = make([]int64, n)
		lastVersions        = make([]int32, n)
	)
	for i, r := range w.rows {
		ids[i], days[i], curs[i] = r.AccountID, r.Day, r.Currency
		depCounts[i], depTotals[i] = int32(r.DepositsCount), r.DepositsTotalMinor.String()
		wdCounts[i], wdTotals[i] = int32(r.WithdrawalsCount), r.WithdrawalsTotalMinor.String()
		closing[i], lastVersions[i] = r.ClosingBalanceMinor, int32(r.LastVersion)
	}
	// A day already in the table gets the batch's movements added. Every event of
	// the batch is newer than any the table holds for the account (fold checked
	// it), so the batch's closing balance is the day's; the WHERE makes a row
	// that would go backwards count as not written. Totals travel as decimal
	// text and are added as numeric: a batch's or a day's sum may pass 2^63.
	b.Queue(`INSERT INTO `+w.table+` AS d (account_id, day, currency, deposits_count, deposits_total_minor,
    withdrawals_count, withdrawals_total_minor, closing_balance_minor, last_version)
SELECT * FROM unnest($1::uuid[], $2::date[], $3::text[], $4::int[], $5::text[]::numeric[], $6::int[], $7::text[]::numeric[], $8::bigint[], $9::int[])
ON CONFLICT (account_id, day) DO UPDATE SET
    currency = excluded.currency,
    deposits_count = d.deposits_count + excluded.deposits_count,
    deposits_total_minor = d.deposits_total_minor + excluded.deposits_total_minor,
    withdrawals_count = d.withdrawals_count + excluded.withdrawals_count,
    withdrawals_total_minor = d.withdrawals_total_minor + excluded.withdrawals_total_minor,
    closing_balance_minor = excluded.closing_balance_minor,
    last_version = excluded.last_version
WHERE d.last_version < excluded.last_version`,
		ids, days, curs, depCounts, depTotals, wdCounts, wdTotals, closing, lastVersions).Exec(expectRows(w.p, n))
}

// sortByName orders projections by name: checkpoints are locked in this order,
// so two instances never deadlock on them.
func sortByName(ps []*Projection) []*Projection {
	out := slices.Clone(ps)
	slices.SortFunc(out, func(a, b *Projection) int { return strings.Compare(a.name, b.name) })
	return out
}
