package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/domain"
)

// AccountState is a command's response: the account as the aggregate now holds
// it, so the client reads its own write without waiting for the projector.
type AccountState struct {
	ID       uuid.UUID `json:"id"`
	OwnerID  string    `json:"owner_id"`
	Currency string    `json:"currency"`
	Balance  string    `json:"balance"`
	Status   string    `json:"status"`
	Version  int       `json:"version"`
}

func accountState(a *domain.Account) AccountState {
	return AccountState{
		ID: a.ID(), OwnerID: a.OwnerID(), Currency: a.Currency().Code(),
		Balance: domain.FormatAmount(a.Balance(), a.Currency()), Status: string(a.Status()), Version: a.Version(),
	}
}

// prepare reads the headers shared by the commands and builds the options,
// including the idempotency record's renderer: the same function renders the
// first answer and, through the stored bytes, every replay.
func (h *handler) prepare(r *http.Request, body *requestBody, successStatus int, withIfMatch bool) (command.Options, error) {
	p := principal(r)
	opts := command.Options{
		Caller: &command.Caller{Principal: p.Subject, Admin: p.IsAdmin()},
		Metadata: command.Metadata{
			Principal:     p.Subject,
			CorrelationID: r.Header.Get("X-Correlation-Id"), // canonical: no allocation to find it
			CausationID:   requestID(r),
		},
	}
	if !validRequestID(opts.Metadata.CorrelationID) {
		opts.Metadata.CorrelationID = opts.Metadata.CausationID
	}
	key, present, err := idempotencyKey(r)
	if err != nil {
		return opts, err
	}
	if withIfMatch {
		if opts.IfMatch, err = ifMatch(r); err != nil {
			return opts, err
		}
	}
	if present {
		path := canonicalPath(r)
		opts.Metadata.IdempotencyKey = key
		opts.Idempotency = &command.Idempotency{
			Scope:       command.IdempotencyScope{Principal: p.Subject, Method: r.Method, Path: path, Key: key},
			Fingerprint: body.fingerprint(r.Method, path),
			Keep:        func(o command.Outcome) (command.Answer, bool) { return keptAnswer(o, successStatus) },
		}
	}
	return opts, nil
}

// keptAnswer is the answer to keep for an outcome: the response as it is
// sent, for successes and 422 rejections; nothing for what did not run.
func keptAnswer(o command.Outcome, successStatus int) (command.Answer, bool) {
	var resp response
	switch {
	case o.Err != nil:
		p := problemFor(o.Err)
		if !isKept(p) {
			return nil, false
		}
		resp = response{Status: p.Status, Header: map[string]string{"Content-Type": "application/problem+json", "Cache-Control": "no-store"}, Body: p.body()}
	case o.Transfer != nil:
		resp = transferResponse(*o.Transfer)
	default:
		resp = successResponse(o.Account, successStatus)
	}
	answer, err := json.Marshal(resp)
	return answer, err == nil
}

// response is how this transport keeps an answer under an Idempotency-Key:
// status, headers and body, replayed byte for byte. The command layer and the
// store keep it as opaque bytes (its JSON).
type response struct {
	Status int               `json:"status"`
	Header map[string]string `json:"header,omitempty"`
	Body   []byte            `json:"body"`
}

func (resp response) write(w http.ResponseWriter, replayed bool) {
	for k, v := range resp.Header {
		w.Header().Set(k, v)
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}

func successResponse(a *domain.Account, status int) response {
	body := marshalAccountState(accountState(a))
	header := map[string]string{"Content-Type": "application/json", "ETag": etag(a.Version())}
	if status == http.StatusCreated {
		header["Location"] = "/accounts/" + a.ID().String()
	}
	return response{Status: status, Header: header, Body: body}
}

// respond writes a command's outcome: a kept or replayed response as stored,
// else the account or the problem.
func respond(w http.ResponseWriter, r *http.Request, res command.Result, err error, status int) {
	switch {
	case res.Answer != nil:
		var kept response
		if uerr := json.Unmarshal(res.Answer, &kept); uerr != nil {
			writeProblem(w, r, fmt.Errorf("kept answer unreadable: %w", uerr))
			return
		}
		kept.write(w, res.Replayed)
	case err != nil:
		writeProblem(w, r, err)
	default:
		writeAccountState(w, res.Account, status)
	}
}

// writeAccountState writes what successResponse(a, status).write(w, false)
// does, without building the header map that only a kept answer needs.
func writeAccountState(w http.ResponseWriter, a *domain.Account, status int) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("ETag", etag(a.Version()))
	if status == http.StatusCreated {
		h.Set("Location", "/accounts/"+a.ID().String())
	}
	w.WriteHeader(status)
	_, _ = w.Write(marshalAccountState(accountState(a)))
}

// canonicalPath is the request's path as an idempotency scope: the route with
// its account id in canonical (lower-case) form, so that one key cannot run
// twice through two spellings of one account's path. Only called once the
// handler has parsed the id.
func canonicalPath(r *http.Request) string {
	pattern := chi.RouteContext(r.Context()).RoutePattern()
	if raw := chi.URLParam(r, "id"); raw != "" {
		if id, err := uuid.Parse(raw); err == nil {
			return strings.Replace(pattern, "{id}", id.String(), 1)
		}
	}
	return pattern
}

// accountID is the account id in the path.
func accountID(r *http.Request) (uuid.UUID, error) { return pathID(r) }

// pathID reads the path's {id}: a UUID in its canonical 36-character form
// (uuid.Parse alone also takes braces, a urn: prefix and no dashes).
func pathID(r *http.Request) (uuid.UUID, error) {
	id, ok := parseUUID(chi.URLParam(r, "id"))
	if !ok {
		return uuid.Nil, invalid("id", "must be a UUID such as 9b2f6c1e-4a43-4c59-9a8e-2f1f0c3b7d10")
	}
	return id, nil
}

// parseUUID takes a UUID in its canonical 36-character form only.
func parseUUID(s string) (uuid.UUID, bool) {
	id, err := uuid.Parse(s)
	return id, err == nil && len(s) == 36
}

func (h *handler) openAccount(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, false, "owner_id", "currency", "initial_deposit", "id")
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	p := principal(r)
	cmd := command.OpenAccount{
		// A principal opens accounts for itself: no owner_id means its sub.
		OwnerID:        body.String("owner_id", p.IsAdmin()),
		Currency:       body.String("currency", false),
		InitialDeposit: body.Optional("initial_deposit"),
	}
	cmd.ID = body.UUID("id", false)
	if raw, sent := body.fields["id"]; !sent || string(raw) == "null" {
		cmd.ID = uuid.New() // chosen by the server; a sent nil UUID stays and is refused
	}
	if raw, sent := body.fields["owner_id"]; (!sent || string(raw) == "null") && !p.IsAdmin() {
		cmd.OwnerID = p.Subject
	}
	if err := body.Err(); err != nil {
		writeProblem(w, r, err)
		return
	}
	if !p.IsAdmin() && cmd.OwnerID != p.Subject {
		writeProblem(w, r, forbidden("only an admin may open an account for another owner_id"))
		return
	}
	opts, err := h.prepare(r, body, http.StatusCreated, false)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	res, err := h.commands.OpenAccount(r.Context(), cmd, opts)
	respond(w, r, res, err, http.StatusCreated)
}

func (h *handler) deposit(w http.ResponseWriter, r *http.Request) {
	h.moveMoney(w, r, func(id uuid.UUID, amount, description string, opts command.Options) (command.Result, error) {
		return h.commands.Deposit(r.Context(), command.Deposit{AccountID: id, Amount: amount, Description: description}, opts)
	})
}

func (h *handler) withdraw(w http.ResponseWriter, r *http.Request) {
	h.moveMoney(w, r, func(id uuid.UUID, amount, description string, opts command.Options) (command.Result, error) {
		return h.commands.Withdraw(r.Context(), command.Withdraw{AccountID: id, Amount: amount, Description: description}, opts)
	})
}

func (h *handler) moveMoney(w http.ResponseWriter, r *http.Request, run func(id uuid.UUID, amount, description string, opts command.Options) (command.Result, error)) {
	id, err := accountID(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	body, err := readBody(r, false, "amount", "description")
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	amount := body.String("amount", true)
	description := body.String("description", false)
	if err := body.Err(); err != nil {
		writeProblem(w, r, err)
		return
	}
	opts, err := h.prepare(r, body, http.StatusOK, true)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	res, err := run(id, amount, description, opts)
	respond(w, r, res, err, http.StatusOK)
}

func (h *handler) closeAccount(w http.ResponseWriter, r *http.Request) {
	id, err := accountID(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	body, err := readBody(r, true, "reason")
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	reason := body.String("reason", false)
	if err := body.Err(); err != nil {
		writeProblem(w, r, err)
		return
	}
	opts, err := h.prepare(r, body, http.StatusOK, true)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	res, err := h.commands.CloseAccount(r.Context(), command.CloseAccount{AccountID: id, Reason: reason}, opts)
	respond(w, r, res, err, http.StatusOK)
}
