package domain

import (
	"errors"
	"strings"
)

// Sentinel errors. Callers compare with errors.Is; the HTTP layer maps each to
// one status and problem code.
var (
	// ErrInvalid marks input that breaks a validation rule; wrapped with the reason.
	ErrInvalid = errors.New("invalid input")

	ErrAccountNotFound      = errors.New("account not found")
	ErrAccountExists        = errors.New("account already exists")
	ErrAccountClosed        = errors.New("account is closed")
	ErrInsufficientFunds    = errors.New("insufficient funds")
	ErrBalanceNotZero       = errors.New("balance is not zero")
	ErrBalanceLimitExceeded = errors.New("resulting balance would exceed the limit")
	ErrCurrencyMismatch     = errors.New("currency does not match the account")
)

// FieldError is one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field of a request. It matches ErrInvalid
// under errors.Is.
type ValidationError struct {
	Fields []FieldError
}

// Error joins the field messages.
func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		parts = append(parts, f.Field+": "+f.Message)
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true for a ValidationError.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Add records a problem with field; the message of an ErrInvalid-wrapping error
// loses its "invalid input: " prefix.
func (e *ValidationError) Add(field string, err error) {
	msg := strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
	e.Fields = append(e.Fields, FieldError{Field: field, Message: msg})
}

// Err returns e when it holds any field, else nil.
func (e *ValidationError) Err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// Has reports whether field already has a problem.
func (e *ValidationError) Has(field string) bool {
	for _, f := range e.Fields {
		if f.Field == field {
			return true
		}
	}
	return false
}
