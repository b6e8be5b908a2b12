// Package command runs the write side: each use case loads a BankAccount from its
// stream, lets the aggregate decide, and appends the new events with optimistic
// concurrency, retrying a lost race by deciding again.
package command

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
)

// Errors of the port: the store maps its database errors to these.
var (
	// ErrVersionTaken means another append took the next version first.
	ErrVersionTaken = errors.New("stream version already taken")
	// ErrIdempotencyKeyTaken means another request stored a response under the key first.
	ErrIdempotencyKeyTaken = errors.New("idempotency key already taken")
	// ErrTransferExists means a transfer saga with this id was begun before.
	ErrTransferExists = errors.New("transfer id already used")
	// ErrTransferNotFound means no transfer saga has this id.
	ErrTransferNotFound = errors.New("transfer not found")
)

// Errors of the use cases, beyond those of the domain.
var (
	// ErrConcurrencyConflict means every retry lost a race; the client may retry.
	ErrConcurrencyConflict = errors.New("concurrent changes to the account; retry")
	// ErrVersionConflict means If-Match named another version than the account's.
	ErrVersionConflict = errors.New("account is not at the expected version")
	// ErrIdempotencyKeyReused means the key was first used with another request.
	ErrIdempotencyKeyReused = errors.New("idempotency key was used with a different request")
)

// Metadata is recorded with every event of one command.
type Metadata struct {
	// Principal is who asked for the change (the token's sub, DESIGN §6).
	Principal      string `json:"principal,omitempty"`
	CorrelationID  string `json:"correlation_id,omitempty"`
	CausationID    string `json:"causation_id,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// Answer is a command's answer as the transport made it, kept under an
// idempotency key so that a retry gets the same bytes. Opaque here: this layer
// keeps and hands back answers, it does not know how a transport writes them.
type Answer []byte

// IdempotencyScope names one idempotency record: the key of one principal,
// within a method and a canonical path (an account id in lower case).
type IdempotencyScope struct {
	Principal string
	Method    string
	Path      string
	Key       string
}

// KeptAnswer is an idempotency record: the request's fingerprint and its answer.
type KeptAnswer struct {
	Fingerprint []byte
	Answer      Answer
}

// Append is one decided change: the aggregate's uncommitted events, appended
// after ExpectedVersion, and optionally the answer to keep under a key, stored
// atomically with them.
type Append struct {
	Account         *domain.Account
	ExpectedVersion int
	// EventIDs, when set, are the ids of the uncommitted events, in order;
	// otherwise the store makes random ones. A transfer step's id is derived
	// from the transfer, so the unique event_id refuses a step twice.
	EventIDs    []uuid.UUID
	Metadata    Metadata
	Idempotency *IdempotencyScope
	Fingerprint []byte
	Answer      Answer // nil: nothing to keep
}

// GroupAppend is the decisions of several commands on one account, appended
// together: the aggregate's uncommitted events, after ExpectedVersion, are
// the decisions' events in order, each with its command's metadata, and each
// decision's answer is kept under its key, all in one statement.
type GroupAppend struct {
	Account         *domain.Account
	ExpectedVersion int
	Decisions       []Decision
}

// Decision is one command's share of a GroupAppend: its next Events
// uncommitted events, and the answer to keep, if any.
type Decision struct {
	Events      int
	Metadata    Metadata
	Idempotency *IdempotencyScope
	Fingerprint []byte
	Answer      Answer // nil: nothing to keep
}

// EventStore is what the use cases need from the event store.
type EventStore interface {
	// Load folds the stream of id (latest snapshot plus tail). A stream that does
	// not exist gives an empty aggregate (Exists() false), not an error.
	Load(ctx context.Context, id uuid.UUID) (*domain.Account, error)
	// Append stores a decision. Errors: ErrVersionTaken, ErrIdempotencyKeyTaken.
	// It must take no transaction id before the stream was read (DESIGN §4),
	// which holds since Load ran before it.
	Append(ctx context.Context, a Append) error
	// AppendGroup stores several commands' decisions in one statement: all
	// or nothing. Errors: as Append.
	AppendGroup(ctx context.Context, g GroupAppend) error
	// LookupAnswer returns the record kept under scope, or nil.
	LookupAnswer(ctx context.Context, scope IdempotencyScope) (*KeptAnswer, error)
	// LookupAnswers returns the records kept under scopes, in their order
	// (nil where none is), in one round trip.
	LookupAnswers(ctx context.Context, scopes []IdempotencyScope) ([]*KeptAnswer, error)

	// BeginTransfer appends step 1 of a transfer (the source's TransferSent)
	// and records the saga as pending, in one statement, and returns when the
	// saga was created. Errors:
	// ErrVersionTaken, ErrTransferExists (then nothing was appended).
	BeginTransfer(ctx context.Context, a Append, saga TransferSaga) (createdAt time.Time, err error)
	// FinishTransfer appends step 2 or 3 and marks the saga completed or
	// returned, in one statement, only while the saga is still pending:
	// applied is false, and nothing appended, when another process finished it
	// first. finishedAt is when the saga finished. Errors: ErrVersionTaken.
	FinishTransfer(ctx context.Context, a Append, id uuid.UUID, status TransferStatus, reason string) (finishedAt time.Time, applied bool, err error)
	// Transfer returns the saga with id. Errors: ErrTransferNotFound.
	Transfer(ctx context.Context, id uuid.UUID) (TransferSaga, error)
	// PendingTransfers returns up to limit sagas pending for longer than
	// olderThan, oldest first.
	PendingTransfers(ctx context.Context, olderThan time.Duration, limit int) ([]TransferSaga, error)
}

// TransferStatus is where a transfer saga stands.
type TransferStatus string

// The statuses of a transfer: pending after step 1, then completed (step 2)
// or returned (step 3), and never anything else.
const (
	TransferPending   TransferStatus = "pending"
	TransferCompleted TransferStatus = "completed"
	TransferReturned  TransferStatus = "returned"
)

// TransferSaga is a transfer's progress as the store keeps it: enough to run
// its remaining steps from any process.
type TransferSaga struct {
	ID          uuid.UUID
	From, To    uuid.UUID
	AmountMinor int64
	Currency    string
	Description string
	// FromOwner and ToOwner own the two accounts: who may see the transfer.
	FromOwner, ToOwner string
	// Principal began the transfer; RequestHash is its request's fingerprint,
	// which tells a retry from another request reusing the id.
	Principal   string
	RequestHash []byte
	Status      TransferStatus
	// Reason says why the destination refused, for a returned transfer.
	Reason     string
	CreatedAt  time.Time
	FinishedAt time.Time // zero while pending
}
