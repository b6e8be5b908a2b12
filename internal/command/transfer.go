package command

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
)

// Transfer asks to move Amount (a decimal string in the source's currency)
// from one account to another of the same currency (DESIGN §7).
type Transfer struct {
	// ID is the transfer's id; uuid.Nil lets the service choose it.
	ID          uuid.UUID
	From, To    uuid.UUID
	Amount      string
	Description string
	// Unreadable holds the fields the transport could not read (a To that
	// is not a UUID, an amount that is not a string): reported after the
	// source check, as DESIGN §7 orders the checks.
	Unreadable error
}

// TransferResult is a transfer's outcome: the saga as it stands when the
// request ends (usually completed or returned), or the kept answer.
type TransferResult struct {
	Transfer TransferSaga
	Answer   Answer
	Replayed bool
}

// errStepTaken means another process finished the saga first; the step this
// process decided was not appended.
var errStepTaken = errors.New("transfer step already taken")

// Transfer runs a transfer's saga within the request: step 1 (TransferSent on
// the source) after the checks of DESIGN §7, then step 2 (TransferReceived on
// the destination) or, when the destination refuses, step 3 (TransferReturned
// on the source). Each step is one single-stream append, leading only that
// stream's queue, so crossing transfers never deadlock. Should a later step
// fail here, the transfer stays pending and the recovery loop finishes it.
//
// Errors, before anything is appended: domain.ErrAccountNotFound (the source
// is not the caller's), domain.ErrAccountClosed, a *domain.ValidationError,
// domain.ErrDestinationNotFound, domain.ErrDestinationClosed,
// domain.ErrCurrencyMismatch, domain.ErrInsufficientFunds, ErrTransferExists,
// ErrIdempotencyKeyReused, and the loop's errors (see execute).
func (s *Service) Transfer(ctx context.Context, cmd Transfer, opts Options) (TransferResult, error) {
	start := time.Now()
	res, err := s.transfer(ctx, cmd, opts)
	outcome := outcome(err, Result{Replayed: res.Replayed})
	if err == nil && !res.Replayed {
		outcome = string(res.Transfer.Status)
	}
	s.obs.CommandFinished("transfer", outcome, time.Since(start))
	return res, err
}

func (s *Service) transfer(ctx context.Context, cmd Transfer, opts Options) (TransferResult, error) {
	idem := opts.Idempotency
	if kept, ok, err := s.replay(ctx, "transfer", idem); ok || err != nil {
		return TransferResult{Answer: kept.Answer, Replayed: kept.Replayed}, err
	}
	id := cmd.ID
	if id == uuid.Nil {
		id = uuid.New()
		if idem != nil {
			// A retry of a request whose answer was never kept (the process
			// died mid-saga) must find the same transfer, not begin another.
			id = uuid.NewSHA1(transferKeySpace, []byte(idem.Scope.Principal+"\x00"+idem.Scope.Path+"\x00"+idem.Scope.Key))
		}
	}
	principal := opts.Metadata.Principal
	saga := TransferSaga{ID: id, From: cmd.From, To: cmd.To, Description: cmd.Description, Principal: principal, RequestHash: fingerprintOf(idem), Status: TransferPending}
	if saga.RequestHash == nil {
		saga.RequestHash = []byte{}
	}

	// Step 1. Only rejections are kept under the key here: a success is kept
	// once the saga has run, with the transfer as it then stands.
	step1 := opts
	if idem != nil {
		onlyRejections := *idem
		onlyRejections.Keep = func(o Outcome) (Answer, bool) {
			if o.Err == nil {
				return nil, false
			}
			return idem.Keep(o)
		}
		step1.Idempotency = &onlyRejections
	}
	step1.eventIDs = []uuid.UUID{stepEventID(id, domain.TypeTransferSent)}
	step1.appendWith = func(ctx context.Context, ap Append) (err error) {
		saga.CreatedAt, err = s.store.BeginTransfer(ctx, ap, saga)
		return err
	}
	res, err := s.execute(ctx, "transfer_send", cmd.From, step1, func(src *domain.Account) error {
		if err := checkSource(src); err != nil {
			return err
		}
		amount, err := parsePositive(cmd.Amount, src)
		if err := errors.Join(cmd.Unreadable, err, validateDescription(cmd.Description)); err != nil {
			return mergeValidation(err)
		}
		dst, err := s.peek(ctx, cmd.To)
		if err != nil {
			return err
		}
		if err := dst.CheckDestination(src.ID(), src.Currency()); err != nil {
			return err
		}
		saga.AmountMinor, saga.Currency = amount, src.Currency().Code()
		saga.FromOwner, saga.ToOwner = src.OwnerID(), dst.OwnerID()
		return src.SendTransfer(id, cmd.To, amount, src.Currency(), cmd.Description, s.now())
	})
	switch {
	case res.Answer != nil:
		return TransferResult{Answer: res.Answer, Replayed: res.Replayed}, err
	case errors.Is(err, ErrTransferExists):
		if saga, err = s.store.Transfer(ctx, id); err != nil {
			return TransferResult{}, err
		}
		switch {
		case idem == nil || saga.Principal != principal:
			return TransferResult{}, ErrTransferExists
		case !bytes.Equal(saga.RequestHash, idem.Fingerprint):
			if cmd.ID == uuid.Nil {
				return TransferResult{}, ErrIdempotencyKeyReused
			}
			return TransferResult{}, ErrTransferExists
		}
		// A retry of the request that began it: finish it and answer.
	case err != nil:
		return TransferResult{}, err
	}

	if finished, err := s.finishTransfer(ctx, saga, opts.Metadata); err == nil {
		saga = finished
	} else if saga, err = s.store.Transfer(context.WithoutCancel(ctx), saga.ID); err != nil {
		// Step 1 committed and what followed failed: the transfer is pending,
		// and the recovery loop finishes it. If even reading it back fails,
		// the client cannot be told which; it retries with its key.
		return TransferResult{}, err
	}
	if idem == nil {
		return TransferResult{Transfer: saga}, nil
	}
	return s.keepTransferAnswer(ctx, saga, idem)
}

// peek returns id's account as the cache or the store has it, without
// caching a load: the caller does not hold id's lock, so it must not write
// its cache entry. Good for a check that a later step decides again.
func (s *Service) peek(ctx context.Context, id uuid.UUID) (*domain.Account, error) {
	if a, ok := s.cache.get(id); ok {
		return a, nil
	}
	return s.store.Load(ctx, id)
}

// transferKeySpace is the UUID name space of transfer ids derived from an
// idempotency key.
var transferKeySpace = uuid.MustParse("3f0c9b52-61a4-4f0e-9d0c-5b7e2a1d8c47")

// stepEventID is the event id of a transfer's step: a step's event can exist
// once per transfer, and the unique event_id says so.
func stepEventID(transfer uuid.UUID, eventType string) uuid.UUID {
	return uuid.NewSHA1(transfer, []byte(eventType))
}

func checkSource(a *domain.Account) error {
	switch {
	case !a.Exists():
		return domain.ErrAccountNotFound
	case a.Status() == domain.StatusClosed:
		return domain.ErrAccountClosed
	}
	return nil
}

// mergeValidation joins the field errors of several validation errors into
// one, the first error of each field only.
func mergeValidation(err error) error {
	var all domain.ValidationError
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		return err
	}
	seen := map[string]bool{}
	for _, e := range joined.Unwrap() {
		var verr *domain.ValidationError
		if !errors.As(e, &verr) {
			return e
		}
		for _, f := range verr.Fields {
			if !seen[f.Field] {
				seen[f.Field] = true
				all.Fields = append(all.Fields, f)
			}
		}
	}
	return all.Err()
}

// finishTransfer runs the saga's remaining steps, if any, and returns it as
// the store then holds it. A step another process took first is not an
// error: the saga is read back as that process left it.
func (s *Service) finishTransfer(ctx context.Context, saga TransferSaga, meta Metadata) (TransferSaga, error) {
	if saga.Status != TransferPending {
		return saga, nil
	}
	cur, err := domain.ParseCurrency(saga.Currency)
	if err != nil {
		return saga, err
	}
	now := s.now()
	finish := func(status TransferStatus, reason string) func(ctx context.Context, ap Append) error {
		return func(ctx context.Context, ap Append) error {
			finishedAt, applied, err := s.store.FinishTransfer(ctx, ap, saga.ID, status, reason)
			if err == nil && !applied {
				return errStepTaken
			}
			if applied {
				saga.Status, saga.Reason, saga.FinishedAt = status, reason, finishedAt
			}
			return err
		}
	}
	system := meta
	system.IdempotencyKey = ""

	// Step 2: the destination takes the money, or refuses it.
	receive := Options{Metadata: system, eventIDs: []uuid.UUID{stepEventID(saga.ID, domain.TypeTransferReceived)}, appendWith: finish(TransferCompleted, "")}
	_, refused := s.execute(ctx, "transfer_receive", saga.To, receive, func(dst *domain.Account) error {
		return dst.ReceiveTransfer(saga.ID, saga.From, saga.AmountMinor, cur, saga.Description, now)
	})
	if reason, ok := refusalReason(refused); ok {
		// Step 3: the money goes back to the source.
		ret := Options{Metadata: system, eventIDs: []uuid.UUID{stepEventID(saga.ID, domain.TypeTransferReturned)}, appendWith: finish(TransferReturned, reason)}
		_, err := s.execute(ctx, "transfer_return", saga.From, ret, func(src *domain.Account) error {
			return src.ReturnTransfer(saga.ID, saga.To, saga.AmountMinor, cur, reason, now)
		})
		refused = err
	}
	switch {
	case refused == nil && saga.Status != TransferPending:
		return saga, nil // this process did the last step: nothing to read back
	case refused != nil && !errors.Is(refused, errStepTaken):
		return saga, refused
	}
	return s.store.Transfer(ctx, saga.ID)
}

// refusalReason maps the destination's refusal of step 2 to the returned
// transfer's reason; ok is false for anything that is not a refusal (a
// failure to retry later).
func refusalReason(err error) (reason string, ok bool) {
	switch {
	case errors.Is(err, domain.ErrAccountClosed):
		return "destination_closed", true
	case errors.Is(err, domain.ErrBalanceLimitExceeded):
		return "balance_limit_exceeded", true
	case errors.Is(err, domain.ErrCurrencyMismatch):
		return "currency_mismatch", true
	case errors.Is(err, domain.ErrAccountNotFound):
		return "destination_not_found", true
	}
	return "", false
}

// keepTransferAnswer stores the transfer's answer under the request's key, or
// returns the one a concurrent duplicate stored first, so that every
// duplicate gets the same bytes.
func (s *Service) keepTransferAnswer(ctx context.Context, saga TransferSaga, idem *Idempotency) (TransferResult, error) {
	answer, keep := idem.Keep(Outcome{Transfer: &saga})
	if !keep {
		return TransferResult{Transfer: saga}, nil
	}
	err := s.store.Append(ctx, Append{Account: domain.NewAccount(saga.From), Idempotency: &idem.Scope, Fingerprint: idem.Fingerprint, Answer: answer})
	switch {
	case err == nil:
		return TransferResult{Transfer: saga, Answer: answer}, nil
	case errors.Is(err, ErrIdempotencyKeyTaken):
		kept, ok, err := s.replay(ctx, "transfer", idem)
		if err != nil || !ok {
			return TransferResult{Transfer: saga}, err
		}
		return TransferResult{Transfer: saga, Answer: kept.Answer, Replayed: true}, nil
	default:
		return TransferResult{}, err
	}
}

// RecoverTransfers finishes up to limit transfers left pending for longer
// than olderThan (a process died between steps). It returns how many it
// finished and the first error; the rest wait for the next round.
func (s *Service) RecoverTransfers(ctx context.Context, olderThan time.Duration, limit int) (finished int, err error) {
	pending, err := s.store.PendingTransfers(ctx, olderThan, limit)
	if err != nil {
		return 0, err
	}
	for _, saga := range pending {
		meta := Metadata{Principal: saga.Principal, CorrelationID: saga.ID.String(), CausationID: "transfer-recovery"}
		done, err := s.finishTransfer(ctx, saga, meta)
		if err != nil {
			return finished, err
		}
		if done.Status != TransferPending {
			finished++
			s.obs.TransferRecovered(string(done.Status))
		}
	}
	return finished, nil
}

// TransferByID returns the transfer saga with id as the write side holds it.
// Errors: ErrTransferNotFound.
func (s *Service) TransferByID(ctx context.Context, id uuid.UUID) (TransferSaga, error) {
	return s.store.Transfer(ctx, id)
}
