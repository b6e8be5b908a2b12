package command

import (
	"context"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
)

// Deposit asks to add Amount (a decimal string in the account's currency).
type Deposit struct {
	AccountID   uuid.UUID
	Amount      string
	Description string
}

// Deposit records a MoneyDeposited. Errors: domain.ErrAccountNotFound,
// domain.ErrAccountClosed, domain.ErrBalanceLimitExceeded, a *domain.ValidationError
// (the amount is parsed in the account's currency), and the loop's errors.
func (s *Service) Deposit(ctx context.Context, cmd Deposit, opts Options) (Result, error) {
	if err := validateDescription(cmd.Description); err != nil {
		return Result{}, err
	}
	return s.execute(ctx, "deposit", cmd.AccountID, opts, func(a *domain.Account) error {
		amount, err := parsePositive(cmd.Amount, a)
		if err != nil {
			return err
		}
		return a.Deposit(amount, a.Currency(), cmd.Description, s.now())
	})
}
