// Package projection keeps the read tables up to date from the event log.
//
// A Projection is one value: its name (the key of its checkpoint), its
// tables, how it applies a batch set-based inside the Runner's transaction,
// and how it folds the whole log in memory for a rebuild. All lists them, one
// file each (balances.go, history.go, daily.go, transfers.go). The Runner (runner.go) tails
// the log and applies each batch to every projection with the checkpoints in
// one transaction; Rebuild (rebuild*.go) folds the log into shadow tables with
// the projections' own rules and swaps them in; Verify (verify.go, oracle.go)
// compares the tables with an independent fold of the domain aggregate.
package projection

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/readmodel"
)

// All returns a new value of every projection. Adding a projection is one
// file and one entry here: the Runner, Rebuild, Verify and the projector's
// commands take the list from this function.
func All() []Projection {
	return []Projection{
		AccountBalances(),
		TransactionHistory(),
		DailySummaries(),
		Transfers(),
	}
}

// Projection keeps one read table (or a few) from the event log. Each folds a
// batch from the state already in its own tables, so projections are
// independent: each has its own checkpoint and can lag or be rebuilt alone.
type Projection interface {
	// Name is the key of the projection's checkpoint row.
	Name() string
	// Tables are the tables it writes; a rebuild makes a shadow of each.
	Tables() []readmodel.Table
	// NewCache returns the per-account state the projection keeps between
	// batches, for at most limit accounts (limit <= 0: none), so that a batch
	// reads only the accounts it has not seen.
	NewCache(limit int) Cache
	// Batch starts applying events (a batch in the gap-safe order) to the
	// tables as names names them, with cache from NewCache.
	Batch(events []eventlog.RecordedEvent, names TableNames, cache Cache) Batch
	// Bulk returns an empty in-memory fold of the log, for a rebuild.
	Bulk() BulkFold
}

// Batch is one projection's share of one batch of events. It is applied in
// two round trips shared by every projection (a pipelined pgx.Batch of reads,
// then one of writes), inside the caller's transaction, which also moves the
// checkpoints: round trips, not rows, are what a batch costs.
type Batch interface {
	// QueueLoad queues the reads of the prior state of the batch's accounts.
	QueueLoad(b *pgx.Batch)
	// Fold folds the events onto that state in memory. Errors: events that
	// would be skipped or reordered (*ContiguityError), or rows that do not fit.
	Fold() error
	// QueueWrite queues the set-based writes of the result.
	QueueWrite(b *pgx.Batch)
	// Committed records the result in the cache once the transaction commits.
	Committed()
}

// BulkFold is a projection's rule run over the whole log in memory, for a
// rebuild: the same steps its Batch takes, with the state held in memory
// and the rows written with COPY.
type BulkFold interface {
	// Apply folds e. emit false means e's rows are in the shadow tables
	// already (a resumed rebuild folds again from its saved state).
	Apply(e eventlog.RecordedEvent, emit bool) error
	// Stream returns, and forgets, the rows made since the last call that
	// are copied chunk by chunk (append-only tables); nil if none.
	Stream() []Rows
	// Save writes the rows held in memory into the shadow tables through
	// replace, which empties a table before it copies rows into it.
	Save(ctx context.Context, replace func(context.Context, Rows) error) error
	// Restore reads back what Save and Stream wrote, to resume a rebuild.
	Restore(ctx context.Context, q Queryer, names TableNames) error
	// Size is how many accounts (and other rows) it holds, for the log.
	Size() int
}

// Rows are n rows of a table, made one at a time by fill in the table's
// column order, for COPY.
type Rows struct {
	Table readmodel.Table
	N     int
	Fill  func(i int, vals []any)
	// Release, when set, is called once the rows are written (or failed):
	// the memory behind them may be used again.
	Release func()
}

// TableNames names a projection's tables in the database: the live ones, or
// a rebuild's shadows.
type TableNames func(readmodel.Table) string

// Live names the live tables.
func Live(t readmodel.Table) string { return t.Name }

// Shadow names the tables a rebuild writes beside the live ones.
func Shadow(t readmodel.Table) string { return t.Name + ShadowSuffix }

// Queryer is what reading back needs: a pool or a transaction.
type Queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Names returns the names of all projections, in the order of All.
func Names() []string {
	var names []string
	for _, p := range All() {
		names = append(names, p.Name())
	}
	return names
}

// ByName returns the projections named, sorted by name. Errors: an unknown name.
func ByName(names []string) ([]Projection, error) {
	all := map[string]Projection{}
	for _, p := range All() {
		all[p.Name()] = p
	}
	var out []Projection
	for _, n := range names {
		p, ok := all[n]
		if !ok {
			return nil, fmt.Errorf("unknown projection %q (want %s)", n, strings.Join(Names(), ", "))
		}
		out = append(out, p)
	}
	return sortByName(out), nil
}

// sortByName orders projections by name: checkpoints are locked in this order,
// so two instances never deadlock on them.
func sortByName(ps []Projection) []Projection {
	out := slices.Clone(ps)
	slices.SortFunc(out, func(a, b Projection) int { return strings.Compare(a.Name(), b.Name()) })
	return out
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
func expectRows(projection, table string, n int) func(pgconn.CommandTag) error {
	return func(ct pgconn.CommandTag) error {
		if got := ct.RowsAffected(); got != int64(n) {
			return fmt.Errorf("%w: projection %s: %d rows written to %s, expected %d", ErrInconsistent, projection, got, table, n)
		}
		return nil
	}
}

// ident quotes a table name for SQL.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// --- the movements of money, which history and daily fold ---

// movement is a deposit, a withdrawal or a step of a transfer, with the
// balance after it.
type movement struct {
	typ          string // one of readmodel's Type constants
	amount       int64
	currency     string
	description  string // a transfer's description; a return's reason
	balanceAfter int64
	// transfer and counterparty are the zero UUID for deposits and withdrawals.
	transfer, counterparty uuid.UUID
}

// streamState is what the history and daily projections fold onto: the
// version of the account's last event they have seen and the balance after
// its last movement.
type streamState struct {
	version int
	balance int64
}

// next folds e onto st, returning the movement it makes, if any. The tables
// of movements cannot tell whether versions are contiguous, only that they
// increase: account_balances checks contiguity, and the Runner each batch.
func (st *streamState) next(projection string, e eventlog.RecordedEvent) (movement, bool, error) {
	if e.Version <= st.version {
		return movement{}, false, &ContiguityError{Projection: projection, StreamID: e.StreamID, Have: st.version, Got: e.Version, Position: eventlog.PositionOf(e)}
	}
	st.version = e.Version
	var m movement
	switch ev := e.Event.(type) {
	case domain.MoneyDeposited:
		m = movement{typ: readmodel.TypeDeposit, amount: ev.AmountMinor, currency: ev.Currency, description: ev.Description}
		st.balance += ev.AmountMinor
	case domain.MoneyWithdrawn:
		m = movement{typ: readmodel.TypeWithdrawal, amount: ev.AmountMinor, currency: ev.Currency, description: ev.Description}
		st.balance -= ev.AmountMinor
	case domain.TransferSent:
		m = movement{typ: readmodel.TypeTransferOut, amount: ev.AmountMinor, currency: ev.Currency, description: ev.Description,
			transfer: ev.TransferID, counterparty: ev.ToAccountID}
		st.balance -= ev.AmountMinor
	case domain.TransferReceived:
		m = movement{typ: readmodel.TypeTransferIn, amount: ev.AmountMinor, currency: ev.Currency, description: ev.Description,
			transfer: ev.TransferID, counterparty: ev.FromAccountID}
		st.balance += ev.AmountMinor
	case domain.TransferReturned:
		m = movement{typ: readmodel.TypeTransferReturned, amount: ev.AmountMinor, currency: ev.Currency, description: ev.Reason,
			transfer: ev.TransferID, counterparty: ev.ToAccountID}
		st.balance += ev.AmountMinor
	default:
		return movement{}, false, nil
	}
	m.balanceAfter = st.balance
	return m, true, nil
}

// streamStates are the states of the accounts a fold has seen.
type streamStates map[uuid.UUID]streamState

// next folds e onto its account's state (see streamState.next).
func (s streamStates) next(projection string, e eventlog.RecordedEvent) (movement, bool, error) {
	st := s[e.StreamID]
	m, ok, err := st.next(projection, e)
	if err == nil {
		s[e.StreamID] = st
	}
	return m, ok, err
}

// movementsTable is where a projection of movements keeps the state it folds
// onto: the columns of its rows' version and balance after.
type movementsTable struct {
	projection             string
	table                  readmodel.Table
	versionCol, balanceCol string
}

// movementsBatch is what the history and daily batches share: the state of
// each account of the batch, read from the table (or the cache), folded
// event by event.
type movementsBatch struct {
	movementsTable
	name   string // the table as named in the database
	ids    []uuid.UUID
	events []eventlog.RecordedEvent
	cache  *stateCache[streamState]
	states streamStates
}

func (t movementsTable) batch(events []eventlog.RecordedEvent, names TableNames, c Cache) movementsBatch {
	return movementsBatch{movementsTable: t, name: names(t.table), ids: accountsOf(events), events: events, cache: cacheOf[streamState](c)}
}

func (w *movementsBatch) Committed() { w.cache.putAll(w.states) }

// QueueLoad queues the read of the state of the accounts not in the cache:
// their latest row by the version column, one index probe each.
func (w *movementsBatch) QueueLoad(b *pgx.Batch) {
	var missing []uuid.UUID
	w.states, missing = split(w.cache, w.ids)
	if len(missing) == 0 {
		return
	}
	b.Queue(`SELECT a.id, t.`+w.versionCol+`, t.`+w.balanceCol+`
FROM unnest($1::uuid[]) AS a(id)
CROSS JOIN LATERAL (SELECT `+w.versionCol+`, `+w.balanceCol+` FROM `+ident(w.name)+`
                    WHERE account_id = a.id ORDER BY `+w.versionCol+` DESC LIMIT 1) AS t`, missing).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				id uuid.UUID
				st streamState
			)
			if err := rows.Scan(&id, &st.version, &st.balance); err != nil {
				return fmt.Errorf("projection %s: load: %w", w.projection, err)
			}
			w.states[id] = st
		}
		return rows.Err()
	})
}

// fold folds the batch's events, calling fn with each movement.
func (w *movementsBatch) fold(fn func(eventlog.RecordedEvent, movement) error) error {
	for _, e := range w.events {
		m, ok, err := w.states.next(w.projection, e)
		if err != nil {
			return err
		}
		if ok {
			if err := fn(e, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// restore reads every account's latest row by the version column, for a
// rebuild that resumes.
func (t movementsTable) restore(ctx context.Context, q Queryer, names TableNames, into streamStates) error {
	rows, err := q.Query(ctx, `SELECT DISTINCT ON (account_id) account_id, `+t.versionCol+`, `+t.balanceCol+`
FROM `+ident(names(t.table))+` ORDER BY account_id, `+t.versionCol+` DESC`)
	if err != nil {
		return fmt.Errorf("projection %s: %w", t.projection, err)
	}
	var (
		id uuid.UUID
		st streamState
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &st.version, &st.balance}, func() error {
		into[id] = st
		return nil
	})
	return err
}
