package command

import (
	"fmt"

	"github.com/evbank/bank/internal/domain"
)

// parsePositive parses amount in a's currency. An unknown account is reported as
// such before the amount, since its currency decides what a valid amount is.
func parsePositive(amount string, a *domain.Account) (int64, error) {
	if !a.Exists() {
		return 0, domain.ErrAccountNotFound
	}
	var verr domain.ValidationError
	v, err := domain.ParseAmount(amount, a.Currency())
	switch {
	case err != nil:
		verr.Add("amount", err)
	case v == 0:
		verr.Add("amount", fmt.Errorf("%w: amount must be greater than zero", domain.ErrInvalid))
	}
	return v, verr.Err()
}

func validateDescription(d string) error {
	if err := domain.ValidateText(d, domain.MaxDescriptionLen); err != nil {
		var verr domain.ValidationError
		verr.Add("description", err)
		return &verr
	}
	return nil
}
