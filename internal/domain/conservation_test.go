package domain_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
)

// TestTransfersConserveMoney runs random sequences of opens, deposits,
// withdrawals, transfer steps and closes over a few accounts, each step
// decided by the aggregate as the service would, and checks the law of
// DESIGN §7 after every step: the sum of balances plus the pending transfers
// equals all deposits minus all withdrawals, and no balance is negative.
func TestTransfersConserveMoney(t *testing.T) {
	t.Parallel()
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 42))
		accounts := make([]*domain.Account, 4)
		for i := range accounts {
			accounts[i] = domain.NewAccount(uuid.New())
		}
		type pending struct {
			id       uuid.UUID
			from, to *domain.Account
			amount   int64
		}
		var (
			inFlight []pending
			net      int64 // deposits minus withdrawals
		)
		pick := func() *domain.Account { return accounts[rng.IntN(len(accounts))] }
		for step := range 300 {
			a := pick()
			amount := rng.Int64N(5000) + 1
			switch rng.IntN(7) {
			case 0:
				_ = a.Open("owner", usd, 0, t1)
			case 1:
				if a.Deposit(amount, usd, "", t1) == nil {
					net += amount
				}
			case 2:
				if a.Withdraw(amount, usd, "", t1) == nil {
					net -= amount
				}
			case 3:
				to := pick()
				id := uuid.New()
				if a.SendTransfer(id, to.ID(), amount, usd, "", t1) == nil {
					inFlight = append(inFlight, pending{id, a, to, amount})
				}
			case 4, 5:
				// The next step of a pending transfer: received, else returned.
				if len(inFlight) == 0 {
					continue
				}
				i := rng.IntN(len(inFlight))
				p := inFlight[i]
				if err := p.to.ReceiveTransfer(p.id, p.from.ID(), p.amount, usd, "", t1); err != nil {
					if rerr := p.from.ReturnTransfer(p.id, p.to.ID(), p.amount, usd, "refused", t1); rerr != nil {
						t.Fatalf("seed %d step %d: return after %v failed: %v", seed, step, err, rerr)
					}
				}
				inFlight = append(inFlight[:i], inFlight[i+1:]...)
			case 6:
				if err := a.Close("", t1); err != nil && !errors.Is(err, domain.ErrBalanceNotZero) &&
					!errors.Is(err, domain.ErrAccountClosed) && !errors.Is(err, domain.ErrAccountNotFound) {
					t.Fatalf("seed %d step %d: close: %v", seed, step, err)
				}
			}
			var sum int64
			for _, acc := range accounts {
				if acc.Balance() < 0 {
					t.Fatalf("seed %d step %d: balance %d below zero", seed, step, acc.Balance())
				}
				sum += acc.Balance()
			}
			for _, p := range inFlight {
				sum += p.amount
			}
			if sum != net {
				t.Fatalf("seed %d step %d: balances plus pending %d, deposits minus withdrawals %d", seed, step, sum, net)
			}
		}
		// The same law holds for a fresh fold of what was recorded, as the
		// projector and a later load see it.
		for _, acc := range accounts {
			replayed := domain.NewAccount(acc.ID())
			for _, e := range acc.Uncommitted() {
				replayed.Apply(e, t1)
			}
			if replayed.Balance() != acc.Balance() || replayed.Version() != acc.Version() {
				t.Fatalf("seed %d: replay gives balance %d v%d, decided %d v%d", seed, replayed.Balance(), replayed.Version(), acc.Balance(), acc.Version())
			}
		}
	}
}
