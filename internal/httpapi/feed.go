package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
)

// EventLog is what the admin's views of the whole event store read:
// GET /events and GET /summary?as_of=. store.EventStore implements it.
type EventLog interface {
	ReadAll(ctx context.Context, f eventlog.FeedFilter) ([]eventlog.FeedEvent, error)
	SummaryAsOf(ctx context.Context, asOf time.Time) (eventlog.SystemSummary, error)
}

// FeedEvent is one event of GET /events: an audit trail item with its stream.
type FeedEvent struct {
	AuditEvent
	StreamID   uuid.UUID `json:"stream_id"`
	StreamType string    `json:"stream_type"`
}

// FeedPage is a page of the global event log.
type FeedPage struct {
	Items      []FeedEvent `json:"items"`
	NextCursor *string     `json:"next_cursor"`
}

// eventTypes are the values ?type= accepts: a typo is a 400, not an empty page.
var eventTypes = []string{
	domain.TypeAccountOpened, domain.TypeMoneyDeposited, domain.TypeMoneyWithdrawn, domain.TypeAccountClosed,
	domain.TypeTransferSent, domain.TypeTransferReceived, domain.TypeTransferReturned,
}

// events answers GET /events: every stored event in the projector's order,
// (transaction id, global position), filtered by type and recorded_at.
func (h *handler) feed(w http.ResponseWriter, r *http.Request) {
	f, err := feedFilter(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	limit := f.Limit
	f.Limit++ // one more tells whether a next page exists
	events, err := h.log.ReadAll(r.Context(), f)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	page := FeedPage{Items: make([]FeedEvent, 0, min(len(events), limit))}
	for i, e := range events {
		if i == limit {
			page.NextCursor = positionCursor(eventlog.PositionOf(events[i-1].RecordedEvent))
			break
		}
		page.Items = append(page.Items, FeedEvent{
			AuditEvent: AuditEvent{Position: e.GlobalPosition, Version: e.Version, Type: e.EventType, SchemaVersion: e.SchemaVersion,
				Data: e.Data, Metadata: e.Metadata, RecordedAt: e.RecordedAt.UTC()},
			StreamID: e.StreamID, StreamType: e.StreamType,
		})
	}
	writeJSON(w, http.StatusOK, page)
}

func feedFilter(r *http.Request) (eventlog.FeedFilter, error) {
	var f eventlog.FeedFilter
	var err error
	if f.Limit, err = pageLimit(r); err != nil {
		return f, err
	}
	for _, t := range r.URL.Query()["type"] {
		if !slices.Contains(eventTypes, t) {
			return f, invalid("type", "must be an event type: "+strings.Join(eventTypes, ", "))
		}
		if !slices.Contains(f.Types, t) {
			f.Types = append(f.Types, t)
		}
	}
	if f.From, err = instantParam(r, "from"); err != nil {
		return f, err
	}
	if f.To, err = instantParam(r, "to"); err != nil {
		return f, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.From.After(f.To) {
		return f, invalid("from", "must not be after to")
	}
	cursor, err := decodeCursor(r)
	if err != nil || cursor == "" {
		return f, err
	}
	// "p:<transaction id>:<global position>"
	rest, ok := strings.CutPrefix(cursor, "p:")
	txs, gps, ok2 := strings.Cut(rest, ":")
	tx, err1 := strconv.ParseUint(txs, 10, 64)
	gp, err2 := strconv.ParseInt(gps, 10, 64)
	if !ok || !ok2 || err1 != nil || err2 != nil || gp < 1 {
		return f, invalid("cursor", "is not a cursor this API returned")
	}
	f.After = eventlog.Position{TransactionID: tx, GlobalPosition: gp}
	return f, nil
}

func positionCursor(p eventlog.Position) *string {
	c := encodeCursor("p:" + strconv.FormatUint(p.TransactionID, 10) + ":" + strconv.FormatInt(p.GlobalPosition, 10))
	return &c
}

// instantParam reads an optional RFC 3339 instant; zero when absent.
func instantParam(r *http.Request, name string) (time.Time, error) {
	raw, present, err := param(r, name)
	if err != nil || !present {
		return time.Time{}, err
	}
	t, perr := time.Parse(time.RFC3339Nano, raw)
	if perr != nil {
		return time.Time{}, invalid(name, "must be an RFC 3339 date-time such as 2024-05-01T12:00:00Z (percent-encode a '+' offset as %2B)")
	}
	return t, nil
}

// summaryAsOf answers GET /summary?as_of=: the figures at that instant,
// folded from the event store.
func (h *handler) summaryAsOf(w http.ResponseWriter, r *http.Request, asOf time.Time) {
	s, err := h.log.SummaryAsOf(r.Context(), asOf)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}
