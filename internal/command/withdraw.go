package command

import (
	"context"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
)

// Withdraw asks to take Amount (a decimal string in the account's currency).
type Withdraw struct {
	AccountID   uuid.UUID
	Amount      string
	Description string
}

// Withdraw records a MoneyWithdrawn. Errors: domain.ErrAccountNotFound,
// domain.ErrAccountClosed, domain.ErrInsufficientFunds, a *domain.ValidationError,
// and the loop's errors.
func (s *Service) Withdraw(ctx context.Context, cmd Withdraw, opts Options) (Result, error) {
	if err := validateDescription(cmd.Description); err != nil {
		return Result{}, err
	}
	return s.execute(ctx, "withdraw", cmd.AccountID, opts, func(a *domain.Account) error {
		amount, err := parsePositive(cmd.Amount, a)
		if err != nil {
			return err
		}
		return a.Withdraw(amount, a.Currency(), cmd.Description, s.now())
	})
}
