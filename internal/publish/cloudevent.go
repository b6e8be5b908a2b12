package publish

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/evbank/bank/internal/eventlog"
)

// Headers the publisher sets besides the CloudEvent body.
const (
	// HeaderMsgID is JetStream's de-duplication id: the event_id.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderTransactionID and HeaderGlobalPosition carry the event's place in
	// the gap-safe tail order. The CloudEvent's sequence is the global position
	// alone, which does not say where to resume: a late-committing transaction
	// has lower global positions after higher ones. So the publisher reads the
	// pair back from the last message of the stream at start.
	HeaderTransactionID  = "Bank-Transaction-Id"
	HeaderGlobalPosition = "Bank-Global-Position"
	// ContentType is the structured CloudEvents JSON mode.
	ContentType = "application/cloudevents+json"
)

// CloudEvent is the body of each message (CloudEvents 1.0, structured JSON,
// DESIGN §8). Consumers may decode into it.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	// Extensions.
	Sequence      string `json:"sequence"`
	StreamVersion int    `json:"streamversion"`
	CorrelationID string `json:"correlationid,omitempty"`
	CausationID   string `json:"causationid,omitempty"`
}

// Subject is where e is published: <prefix>.account.<stream_id>.<event_type>,
// so that a consumer filters by account, by type, or both.
func Subject(prefix string, e eventlog.RecordedEvent) string {
	return prefix + ".account." + e.StreamID.String() + "." + e.EventType
}

// TypePrefix precedes the event type in the CloudEvent's type.
const TypePrefix = "bank.account."

// NewCloudEvent is e as its CloudEvent. Correlation and causation ids come
// from the event's metadata when it has them (legacy events may not).
func NewCloudEvent(source string, e eventlog.RecordedEvent) (CloudEvent, error) {
	ce := CloudEvent{
		SpecVersion:     "1.0",
		ID:              e.EventID.String(),
		Source:          source,
		Type:            TypePrefix + e.EventType,
		Subject:         e.StreamID.String(),
		Time:            e.RecordedAt.UTC(),
		DataContentType: "application/json",
		Data:            e.Data,
		Sequence:        strconv.FormatInt(e.GlobalPosition, 10),
		StreamVersion:   e.Version,
	}
	if len(e.Metadata) > 0 && string(e.Metadata) != "null" {
		var md struct {
			CorrelationID string `json:"correlation_id"`
			CausationID   string `json:"causation_id"`
		}
		if err := json.Unmarshal(e.Metadata, &md); err != nil {
			return ce, fmt.Errorf("metadata of the event at %s: %w", eventlog.PositionOf(e), err)
		}
		ce.CorrelationID, ce.CausationID = md.CorrelationID, md.CausationID
	}
	return ce, nil
}

// message builds the NATS message for e.
func message(prefix, source string, e eventlog.RecordedEvent) (*nats.Msg, error) {
	ce, err := NewCloudEvent(source, e)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(ce)
	if err != nil {
		return nil, fmt.Errorf("cloudevent of the event at %s: %w", eventlog.PositionOf(e), err)
	}
	m := nats.NewMsg(Subject(prefix, e))
	m.Data = body
	m.Header.Set("Content-Type", ContentType)
	m.Header.Set(HeaderMsgID, ce.ID)
	m.Header.Set(HeaderTransactionID, strconv.FormatUint(e.TransactionID, 10))
	m.Header.Set(HeaderGlobalPosition, ce.Sequence)
	return m, nil
}

// positionOf reads the tail position back from a stored message's headers.
func positionOf(h nats.Header) (eventlog.Position, bool) {
	tx, err1 := strconv.ParseUint(h.Get(HeaderTransactionID), 10, 64)
	gp, err2 := strconv.ParseInt(h.Get(HeaderGlobalPosition), 10, 64)
	if err1 != nil || err2 != nil {
		return eventlog.Position{}, false
	}
	return eventlog.Position{TransactionID: tx, GlobalPosition: gp}, true
}
