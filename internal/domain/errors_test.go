package domain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evbank/bank/internal/domain"
)

func TestValidationError(t *testing.T) {
	t.Parallel()
	var verr domain.ValidationError
	if verr.Err() != nil {
		t.Fatalf("empty ValidationError.Err() = %v, want nil", verr.Err())
	}
	verr.Add("amount", fmt.Errorf("%w: amount must be positive", domain.ErrInvalid))
	verr.Add("currency", errors.New("unknown currency"))
	err := verr.Err()
	if !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	if errors.Is(err, domain.ErrAccountNotFound) {
		t.Errorf("errors.Is(%v, ErrAccountNotFound) = true", err)
	}
	want := []domain.FieldError{
		{Field: "amount", Message: "amount must be positive"},
		{Field: "currency", Message: "unknown currency"},
	}
	if diff := cmp.Diff(want, verr.Fields); diff != "" {
		t.Errorf("Fields (-want +got):\n%s", diff)
	}
	if got, want := err.Error(), "invalid input: amount: amount must be positive; currency: unknown currency"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("open account: %w", err)
	var as *domain.ValidationError
	if !errors.As(wrapped, &as) || len(as.Fields) != 2 {
		t.Errorf("errors.As through a wrap failed: %v", wrapped)
	}
}
