package command

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
)

// OpenAccount asks for a new account. Currency "" means the default currency;
// InitialDeposit "" or "0" means none.
type OpenAccount struct {
	ID             uuid.UUID
	OwnerID        string
	Currency       string
	InitialDeposit string
}

// OpenAccount opens an account with id cmd.ID. Errors: a *domain.ValidationError,
// domain.ErrAccountExists, and the loop's errors (see execute).
func (s *Service) OpenAccount(ctx context.Context, cmd OpenAccount, opts Options) (Result, error) {
	cur, initial, err := s.parseOpen(cmd)
	if err != nil {
		return Result{}, err
	}
	// A taken id is account_exists whoever owns it: there is no account of
	// the caller's to check yet (the transport checks the owner_id it names).
	opts.Caller = nil
	return s.execute(ctx, "open_account", cmd.ID, opts, func(a *domain.Account) error {
		return a.Open(cmd.OwnerID, cur, initial, s.now())
	})
}

func (s *Service) parseOpen(cmd OpenAccount) (domain.Currency, int64, error) {
	var verr domain.ValidationError
	if cmd.ID == uuid.Nil {
		verr.Add("id", fmt.Errorf("%w: id must not be the nil UUID", domain.ErrInvalid))
	}
	if err := domain.ValidateOwnerID(cmd.OwnerID); err != nil {
		verr.Add("owner_id", err)
	}
	cur := s.defaultCurrency
	if cmd.Currency != "" {
		c, err := domain.ParseCurrency(cmd.Currency)
		if err != nil {
			verr.Add("currency", err)
		}
		cur = c
	}
	var initial int64
	if cmd.InitialDeposit != "" && !cur.IsZero() {
		v, err := domain.ParseAmount(cmd.InitialDeposit, cur)
		if err != nil {
			verr.Add("initial_deposit", err)
		}
		initial = v
	}
	return cur, initial, verr.Err()
}
