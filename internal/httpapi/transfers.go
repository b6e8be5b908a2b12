package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/query"
)

// transferView is the saga as the API shows a transfer: the same shape as
// the read side's (query.Transfer), from the write side's row.
func transferView(t command.TransferSaga) query.Transfer {
	v := query.Transfer{
		ID: t.ID, FromAccountID: t.From, ToAccountID: t.To, Currency: t.Currency, Description: t.Description,
		Status: string(t.Status), CreatedAt: t.CreatedAt.UTC(),
	}
	if cur, err := domain.ParseCurrency(t.Currency); err == nil {
		v.Amount = domain.FormatAmount(t.AmountMinor, cur)
	}
	if t.Status == command.TransferReturned {
		v.Reason = &t.Reason
	}
	if !t.FinishedAt.IsZero() {
		at := t.FinishedAt.UTC()
		v.CompletedAt = &at
	}
	return v
}

func transferResponse(t command.TransferSaga) response {
	body, _ := json.Marshal(transferView(t)) // plain struct, always marshals
	return response{Status: http.StatusCreated, Body: body, Header: map[string]string{
		"Content-Type": "application/json", "Location": "/transfers/" + t.ID.String(),
	}}
}

// createTransfer answers POST /transfers: the saga runs within the request.
func (h *handler) createTransfer(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, false, "from_account_id", "to_account_id", "amount", "description", "id")
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	// The source comes first: whether it is the caller's decides between 404
	// and every other answer. The other fields' errors wait for that check.
	from := body.UUID("from_account_id", true)
	if err := body.Err(); err != nil {
		writeProblem(w, r, err)
		return
	}
	cmd := command.Transfer{
		From:        from,
		To:          body.UUID("to_account_id", true),
		Amount:      body.String("amount", true),
		Description: body.String("description", false),
		ID:          body.UUID("id", false),
		Unreadable:  body.Err(),
	}
	opts, err := h.prepare(r, body, http.StatusCreated, false)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	res, err := h.commands.Transfer(r.Context(), cmd, opts)
	if res.Answer == nil && err == nil {
		transferResponse(res.Transfer).write(w, false)
		return
	}
	respond(w, r, command.Result{Answer: res.Answer, Replayed: res.Replayed}, err, http.StatusCreated)
}

// getTransfer answers GET /transfers/{id} from the saga the write side keeps,
// so it reads its own write: the owners of both accounts and admins see it;
// for anyone else it does not exist.
func (h *handler) getTransfer(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	t, err := h.commands.TransferByID(r.Context(), id)
	if err == nil && !principal(r).MayAccess(t.FromOwner) && !principal(r).MayAccess(t.ToOwner) {
		err = command.ErrTransferNotFound
	}
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, transferView(t))
}

// UUID returns field name as a UUID in its canonical 36-character form;
// absent or null give uuid.Nil (missing, when required).
func (b *requestBody) UUID(name string, required bool) uuid.UUID {
	raw := b.Optional(name)
	if raw == "" {
		if _, sent := b.fields[name]; required && !sent {
			b.verr.Add(name, fmt.Errorf("%w: %s is required", domain.ErrInvalid, name))
		}
		return uuid.Nil
	}
	id, ok := parseUUID(raw)
	if !ok {
		b.verr.Add(name, fmt.Errorf("%w: %s must be a UUID such as 9b2f6c1e-4a43-4c59-9a8e-2f1f0c3b7d10", domain.ErrInvalid, name))
	}
	return id
}
