package httpapi

import (
	"encoding/json"
	"net/http"
	"time"
)

// AuditEvent is one stored event as the audit trail shows it: the stored schema
// version, the data in the current shape.
type AuditEvent struct {
	Position      int64           `json:"position"`
	Version       int             `json:"version"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	Data          json.RawMessage `json:"data"`
	Metadata      json.RawMessage `json:"metadata"`
	RecordedAt    time.Time       `json:"recorded_at"`
}

// AuditPage is a page of the audit trail.
type AuditPage struct {
	Items      []AuditEvent `json:"items"`
	NextCursor *string      `json:"next_cursor"`
}

func (h *handler) auditTrail(w http.ResponseWriter, r *http.Request) {
	id, err := accountID(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	limit, after, err := versionPage(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	owner, _, err := h.events.StreamHead(r.Context(), id)
	if err == nil {
		err = mayAccess(r, owner)
	}
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	events, err := h.events.ReadStream(r.Context(), id, after, limit+1)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	page := AuditPage{Items: make([]AuditEvent, 0, min(len(events), limit))}
	for i, e := range events {
		if i == limit {
			page.NextCursor = versionCursor(events[i-1].Version)
			break
		}
		page.Items = append(page.Items, AuditEvent{
			Position: e.GlobalPosition, Version: e.Version, Type: e.EventType, SchemaVersion: e.SchemaVersion,
			Data: e.Data, Metadata: e.Metadata, RecordedAt: e.RecordedAt.UTC(),
		})
	}
	writeJSON(w, http.StatusOK, page)
}
