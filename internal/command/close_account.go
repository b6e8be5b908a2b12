package command

import (
	"context"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
)

// CloseAccount asks to close an account whose balance is zero.
type CloseAccount struct {
	AccountID uuid.UUID
	Reason    string
}

// CloseAccount records AccountClosed. Errors: domain.ErrAccountNotFound,
// domain.ErrAccountClosed, domain.ErrBalanceNotZero, a *domain.ValidationError,
// and the loop's errors.
func (s *Service) CloseAccount(ctx context.Context, cmd CloseAccount, opts Options) (Result, error) {
	if err := domain.ValidateText(cmd.Reason, domain.MaxDescriptionLen); err != nil {
		var verr domain.ValidationError
		verr.Add("reason", err)
		return Result{}, &verr
	}
	return s.execute(ctx, "close_account", cmd.AccountID, opts, func(a *domain.Account) error {
		return a.Close(cmd.Reason, s.now())
	})
}
