package store

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/evbank/bank/internal/dberr"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
)

// ReadAll returns a page of every stored event in the order the projector
// reads them, (transaction_id, global_position), each upcast to the current
// shape. It does not stop at the tailing reader's visibility horizon: an
// event that commits late may land before a page already read, which a
// reader of the feed who needs every event re-reads from an earlier cursor
// (or consumes the broker's stream, which is gap-free).
func (s *EventStore) ReadAll(ctx context.Context, f eventlog.FeedFilter) (_ []eventlog.FeedEvent, err error) {
	defer dberr.Mark(&err)
	if f.Limit <= 0 {
		return nil, fmt.Errorf("read all: limit must be positive, got %d", f.Limit)
	}
	var from, to *time.Time
	if !f.From.IsZero() {
		from = &f.From
	}
	if !f.To.IsZero() {
		to = &f.To
	}
	var types []string
	if len(f.Types) > 0 {
		types = f.Types
	}
	rows, err := s.pool.Query(ctx, `
SELECT global_position, transaction_id::text::bigint, stream_id, stream_type, version, event_id, event_type, schema_version, data, metadata, recorded_at
FROM events
WHERE (transaction_id, global_position) > ($1::text::xid8, $2::bigint)
  AND ($3::text[] IS NULL OR event_type = ANY($3))
  AND ($4::timestamptz IS NULL OR recorded_at >= $4)
  AND ($5::timestamptz IS NULL OR recorded_at <= $5)
ORDER BY transaction_id, global_position
LIMIT $6`, fmt.Sprint(f.After.TransactionID), f.After.GlobalPosition, types, from, to, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("read all: %w", err)
	}
	defer rows.Close()
	var out []eventlog.FeedEvent
	for rows.Next() {
		var (
			e             eventlog.FeedEvent
			raw           []byte
			schemaVersion int16
		)
		if err := rows.Scan(&e.GlobalPosition, &e.TransactionID, &e.StreamID, &e.StreamType, &e.Version, &e.EventID, &e.EventType,
			&schemaVersion, &raw, &e.Metadata, &e.RecordedAt); err != nil {
			return nil, fmt.Errorf("read all: %w", err)
		}
		e.SchemaVersion = int(schemaVersion)
		if err := Decode(&e.RecordedEvent, raw, s.uc); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read all: %w", err)
	}
	return out, nil
}

// summaryAsOfQuery folds the events recorded up to $1 in one statement (one
// snapshot). Amounts sum as numeric, so no total overflows. Legacy (v1)
// events have no currency (the account's is $2, the default) and amounts in
// major units: $3 is 10^digits of the default currency, and a v1 amount that
// does not convert exactly is counted (inexact) so that the caller fails
// loudly, as the upcaster does, instead of rounding.
const summaryAsOfQuery = `
WITH ev AS MATERIALIZED (
    SELECT stream_id, event_type, schema_version, data FROM events WHERE recorded_at <= $1
),
closed AS (
    SELECT DISTINCT stream_id FROM ev WHERE event_type = 'AccountClosed'
),
acct AS (
    SELECT o.stream_id,
           CASE WHEN o.schema_version = 1 THEN $2 ELSE o.data->>'currency' END AS currency,
           c.stream_id IS NOT NULL AS is_closed
    FROM ev o LEFT JOIN closed c USING (stream_id)
    WHERE o.event_type = 'AccountOpened'
),
counts AS (
    SELECT currency, count(*) AS total, count(*) FILTER (WHERE NOT is_closed) AS active, count(*) FILTER (WHERE is_closed) AS closed
    FROM acct GROUP BY currency
),
money AS (
    SELECT a.currency,
           sum(CASE WHEN e.event_type IN ('MoneyWithdrawn', 'TransferSent') THEN -1 ELSE 1 END *
               CASE WHEN e.schema_version = 1 THEN (e.data->>'amount')::numeric * $3 ELSE (e.data->>'amount_minor')::numeric END) AS balance,
           count(*) FILTER (WHERE e.schema_version = 1 AND ((e.data->>'amount')::numeric * $3) % 1 <> 0) AS inexact
    FROM ev e JOIN acct a USING (stream_id)
    WHERE e.event_type IN ('MoneyDeposited', 'MoneyWithdrawn', 'TransferSent', 'TransferReceived', 'TransferReturned')
    GROUP BY a.currency
),
settled AS (
    SELECT DISTINCT data->>'transfer_id' AS transfer_id FROM ev WHERE event_type IN ('TransferReceived', 'TransferReturned')
),
flight AS (
    SELECT a.currency, sum((s.data->>'amount_minor')::numeric) AS in_flight
    FROM ev s JOIN acct a USING (stream_id)
    WHERE s.event_type = 'TransferSent' AND NOT EXISTS (SELECT 1 FROM settled d WHERE d.transfer_id = s.data->>'transfer_id')
    GROUP BY a.currency
)
SELECT c.currency, c.total, c.active, c.closed,
       trunc(coalesce(m.balance, 0))::text, coalesce(m.inexact, 0), coalesce(f.in_flight, 0)::text
FROM counts c LEFT JOIN money m USING (currency) LEFT JOIN flight f USING (currency)
ORDER BY c.currency`

// SummaryAsOf returns the system's figures at asOf, from the events recorded
// up to it (recorded_at <= asOf): accounts by status, and per currency the
// balances' total and the transfers pending at that instant (sent, neither
// received nor returned by then). A legacy amount that does not convert
// exactly to minor units is an *eventlog.UpcastError naming its event.
func (s *EventStore) SummaryAsOf(ctx context.Context, asOf time.Time) (_ eventlog.SystemSummary, err error) {
	defer dberr.Mark(&err)
	def := s.uc.DefaultCurrency
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(def.Digits())), nil).String()
	rows, err := s.pool.Query(ctx, summaryAsOfQuery, asOf, def.Code(), scale)
	if err != nil {
		return eventlog.SystemSummary{}, fmt.Errorf("summary as of %s: %w", asOf.Format(time.RFC3339Nano), err)
	}
	defer rows.Close()
	sum := eventlog.SystemSummary{Balances: []eventlog.SystemCurrencyTotal{}}
	inexact := false
	for rows.Next() {
		var (
			code                  string
			total, active, closed int64
			balance, inFlight     string
			bad                   int64
		)
		if err := rows.Scan(&code, &total, &active, &closed, &balance, &bad, &inFlight); err != nil {
			return eventlog.SystemSummary{}, fmt.Errorf("summary as of: %w", err)
		}
		inexact = inexact || bad > 0
		cur, err := domain.ParseCurrency(code)
		if err != nil {
			return eventlog.SystemSummary{}, fmt.Errorf("summary as of: stored currency %q: %w", code, err)
		}
		ct := eventlog.SystemCurrencyTotal{Currency: code}
		if ct.Total, err = domain.FormatMinorDecimal(balance, cur); err == nil {
			ct.InFlight, err = domain.FormatMinorDecimal(inFlight, cur)
		}
		if err != nil {
			return eventlog.SystemSummary{}, fmt.Errorf("summary as of, %s: %w", code, err)
		}
		sum.Accounts.Total += total
		sum.Accounts.Active += active
		sum.Accounts.Closed += closed
		sum.Balances = append(sum.Balances, ct)
	}
	if err := rows.Err(); err != nil {
		return eventlog.SystemSummary{}, fmt.Errorf("summary as of: %w", err)
	}
	rows.Close()
	if inexact {
		return eventlog.SystemSummary{}, s.inexactLegacy(ctx, asOf, scale)
	}
	return sum, nil
}

// inexactLegacy names the first legacy event whose amount has more digits
// than the default currency's minor units.
func (s *EventStore) inexactLegacy(ctx context.Context, asOf time.Time, scale string) error {
	var (
		pos     int64
		id      uuid.UUID
		version int
		amount  string
	)
	err := s.pool.QueryRow(ctx, `
SELECT global_position, stream_id, version, data->>'amount' FROM events
WHERE recorded_at <= $1 AND schema_version = 1 AND event_type IN ('MoneyDeposited', 'MoneyWithdrawn')
  AND ((data->>'amount')::numeric * $2) % 1 <> 0
ORDER BY global_position LIMIT 1`, asOf, scale).Scan(&pos, &id, &version, &amount)
	if errors.Is(err, pgx.ErrNoRows) {
		return errors.New("summary as of: a legacy amount does not convert exactly, but none was found on a second look")
	}
	if err != nil {
		return fmt.Errorf("summary as of: %w", err)
	}
	return &eventlog.UpcastError{GlobalPosition: pos, StreamID: id, Version: version,
		Err: fmt.Errorf("amount %s has more digits than %s's minor units", amount, s.uc.DefaultCurrency.Code())}
}
