package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/domain"
)

// TransferView is a transfer as the API shows it (DESIGN §7): nothing of the
// destination but its id.
type TransferView struct {
	ID            uuid.UUID  `json:"id"`
	FromAccountID uuid.UUID  `json:"from_account_id"`
	ToAccountID   uuid.UUID  `json:"to_account_id"`
	Amount        string     `json:"amount"`
	Currency      string     `json:"currency"`
	Description   string     `json:"description"`
	Status        string     `json:"status"`
	Reason        *string    `json:"reason"`
	CreatedAt     time.Time  `json:"created_at"`
	CompletedAt   *time.Time `json:"completed_at"`
}

func transferView(t command.TransferSaga) TransferView {
	v := TransferView{
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
	raw := chi.URLParam(r, "id")
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		writeProblem(w, r, invalid("id", "must be a UUID such as 9b2f6c1e-4a43-4c59-9a8e-2f1f0c3b7d10"))
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
	s := b.String(name, required)
	if s == "" {
		if _, present := b.fields[name]; present && string(b.fields[name]) != "null" && !b.verr.Has(name) {
			b.verr.Add(name, fmt.Errorf("%w: %s must be a UUID", domain.ErrInvalid, name))
		}
		return uuid.Nil
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		b.verr.Add(name, fmt.Errorf("%w: %s must be a UUID such as 9b2f6c1e-4a43-4c59-9a8e-2f1f0c3b7d10", domain.ErrInvalid, name))
		return uuid.Nil
	}
	return id
}
