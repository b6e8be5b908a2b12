package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/dberr"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/query"
)

// Problem is an RFC 9457 problem detail with the service's stable code.
type Problem struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Detail string              `json:"detail"`
	Code   string              `json:"code"`
	Errors []domain.FieldError `json:"errors,omitempty"`

	retryAfter      string
	allow           string
	wwwAuthenticate string
}

// statusClientClosedRequest is nginx's non-standard status for a request whose
// client went away before the answer.
const statusClientClosedRequest = 499

// problemTypeBase prefixes each code to form the problem's type URI; the codes
// are documented in openapi.yaml.
const problemTypeBase = "urn:problem-type:bank:"

// unavailableRetryAfter is the Retry-After of 503 unavailable, in seconds: a
// restart or failover of PostgreSQL takes seconds, not one.
const unavailableRetryAfter = "5"

func newProblem(status int, code, detail string) *Problem {
	title := http.StatusText(status)
	if status == statusClientClosedRequest {
		title = "Client Closed Request"
	}
	return &Problem{Type: problemTypeBase + code, Title: title, Status: status, Detail: detail, Code: code}
}

// Error makes a *Problem usable as an error inside the handlers.
func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

func malformed(detail string) *Problem {
	return newProblem(http.StatusBadRequest, "malformed_request", detail)
}

func invalid(field, message string) *Problem {
	p := newProblem(http.StatusBadRequest, "validation_failed", "the request has invalid fields")
	p.Errors = []domain.FieldError{{Field: field, Message: message}}
	return p
}

// problemFor maps an error to its problem. This one table decides every error
// status the API sends; anything it does not know is a 500 that is logged and
// never explained to the client.
func problemFor(err error) *Problem {
	var (
		p      *Problem
		verr   *domain.ValidationError
		stored *eventlog.UpcastError
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, dberr.ErrUnavailable):
		// The database's address and the driver's words stay in the log.
		p := newProblem(http.StatusServiceUnavailable, "unavailable", "the database cannot be reached; retry later (a command may have been applied: retry it with the same Idempotency-Key)")
		p.retryAfter = unavailableRetryAfter
		return p
	case errors.As(err, &stored):
		// A stored event that cannot be read is the server's failure, even when
		// its cause wraps domain.ErrInvalid: never the client's bad input.
		return newProblem(http.StatusInternalServerError, "internal_error", "an internal error occurred; it has been logged")
	case errors.As(err, &verr):
		p := newProblem(http.StatusBadRequest, "validation_failed", "the request has invalid fields")
		p.Errors = verr.Fields
		return p
	case errors.Is(err, domain.ErrInvalid):
		return newProblem(http.StatusBadRequest, "validation_failed", strings.TrimPrefix(err.Error(), "invalid input: "))
	case errors.Is(err, domain.ErrAccountNotFound):
		return newProblem(http.StatusNotFound, "account_not_found", "no account has this id")
	case errors.Is(err, domain.ErrAccountExists):
		return newProblem(http.StatusConflict, "account_exists", "an account with this id already exists")
	case errors.Is(err, command.ErrConcurrencyConflict):
		p := newProblem(http.StatusConflict, "concurrency_conflict", "the account changed concurrently too often; the request changed nothing and is safe to retry")
		p.retryAfter = "1"
		return p
	case errors.Is(err, command.ErrVersionConflict):
		return newProblem(http.StatusPreconditionFailed, "version_conflict", "the account is not at the version given in If-Match")
	case errors.Is(err, domain.ErrInsufficientFunds):
		return newProblem(http.StatusUnprocessableEntity, "insufficient_funds", "the amount is above the account's balance")
	case errors.Is(err, domain.ErrAccountClosed):
		return newProblem(http.StatusUnprocessableEntity, "account_closed", "the account is closed")
	case errors.Is(err, domain.ErrBalanceNotZero):
		return newProblem(http.StatusUnprocessableEntity, "balance_not_zero", "only an account with a zero balance can be closed")
	case errors.Is(err, command.ErrIdempotencyKeyReused):
		return newProblem(http.StatusUnprocessableEntity, "idempotency_key_reused", "this Idempotency-Key was used with a different request")
	case errors.Is(err, domain.ErrBalanceLimitExceeded):
		return newProblem(http.StatusUnprocessableEntity, "balance_limit_exceeded", "the resulting balance would exceed 10^15 minor units")
	case errors.Is(err, command.ErrTransferNotFound):
		return newProblem(http.StatusNotFound, "transfer_not_found", "no transfer has this id")
	case errors.Is(err, command.ErrTransferExists):
		return newProblem(http.StatusConflict, "transfer_exists", "a transfer with this id already exists; read it with GET /transfers/{id}")
	case errors.Is(err, domain.ErrDestinationNotFound):
		return newProblem(http.StatusUnprocessableEntity, "destination_not_found", "the destination account does not exist")
	case errors.Is(err, domain.ErrDestinationClosed):
		return newProblem(http.StatusUnprocessableEntity, "destination_closed", "the destination account is closed")
	case errors.Is(err, domain.ErrCurrencyMismatch):
		return newProblem(http.StatusUnprocessableEntity, "currency_mismatch", "the amount's currency is not the account's")
	case errors.Is(err, query.ErrProjectionLagging):
		detail := "the read model has not reached min_version yet; retry"
		var lag *query.LaggingError
		if errors.As(err, &lag) {
			detail = fmt.Sprintf("the read model holds version %d of the account, not yet %d; retry", lag.Have, lag.Want)
		}
		p := newProblem(http.StatusServiceUnavailable, "projection_lagging", detail)
		p.retryAfter = "1"
		return p
	case errors.Is(err, context.Canceled):
		// The client hung up: nobody reads this answer, and it is not a server
		// fault, so it must not count as a 5xx in logs and alerts. 499 is the
		// status proxies such as nginx record for it.
		return newProblem(statusClientClosedRequest, "client_closed_request", "the client closed the request")
	case errors.Is(err, context.DeadlineExceeded):
		p := newProblem(http.StatusServiceUnavailable, "timeout", "the request took too long; retry")
		p.retryAfter = "1"
		return p
	default:
		return newProblem(http.StatusInternalServerError, "internal_error", "an internal error occurred; it has been logged")
	}
}

// isKept reports whether a rejection is stored under an Idempotency-Key: the
// contract keeps successes and 422 rejections, nothing that did not run.
func isKept(p *Problem) bool { return p.Status == http.StatusUnprocessableEntity }

func (p *Problem) body() []byte {
	b, _ := json.Marshal(p) // a Problem always marshals
	return b
}

func writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err)
	if p.Status >= 500 {
		logger(r).Error().Err(err).Msg("request failed")
	}
	if p.retryAfter != "" {
		w.Header().Set("Retry-After", p.retryAfter)
	}
	if p.allow != "" {
		w.Header().Set("Allow", p.allow)
	}
	if p.wwwAuthenticate != "" {
		w.Header().Set("WWW-Authenticate", p.wwwAuthenticate)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_, _ = w.Write(p.body())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
