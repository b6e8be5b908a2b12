package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
)

var (
	accountID = uuid.MustParse("6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10")
	// t0 is when the given history was recorded, t1 when the command runs.
	t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 = time.Date(2024, 1, 3, 4, 5, 6, 789, time.UTC)
)

func opened() domain.Event {
	return domain.AccountOpened{AccountID: accountID, OwnerID: "alice", Currency: "USD", OpenedAt: t0}
}

func openedIn(code string) domain.Event {
	return domain.AccountOpened{AccountID: accountID, OwnerID: "alice", Currency: code, OpenedAt: t0}
}

func deposited(minor int64) domain.Event {
	return domain.MoneyDeposited{AmountMinor: minor, Currency: "USD", Description: ""}
}

func withdrawn(minor int64) domain.Event {
	return domain.MoneyWithdrawn{AmountMinor: minor, Currency: "USD", Description: ""}
}

func closed() domain.Event {
	return domain.AccountClosed{Reason: "", ClosedAt: t0}
}

// given loads an aggregate from history recorded at t0, as a repository would.
func given(events ...domain.Event) *domain.Account {
	a := domain.NewAccount(accountID)
	for _, e := range events {
		a.Apply(e, t0)
	}
	return a
}

func TestOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		ownerID   string
		cur       domain.Currency
		initial   int64
		want      []domain.Event
		wantField []string // invalid fields, in order, when an error is expected
	}{
		{
			name: "without initial deposit", ownerID: "alice", cur: usd, initial: 0,
			want: []domain.Event{domain.AccountOpened{AccountID: accountID, OwnerID: "alice", Currency: "USD", OpenedAt: t1}},
		},
		{
			name: "with initial deposit", ownerID: "alice", cur: usd, initial: 12550,
			want: []domain.Event{
				domain.AccountOpened{AccountID: accountID, OwnerID: "alice", Currency: "USD", OpenedAt: t1},
				domain.MoneyDeposited{AmountMinor: 12550, Currency: "USD", Description: "initial deposit"},
			},
		},
		{
			name: "initial deposit at the limit", ownerID: "alice", cur: jpy, initial: domain.MaxMinor,
			want: []domain.Event{
				domain.AccountOpened{AccountID: accountID, OwnerID: "alice", Currency: "JPY", OpenedAt: t1},
				domain.MoneyDeposited{AmountMinor: domain.MaxMinor, Currency: "JPY", Description: "initial deposit"},
			},
		},
		{
			name: "owner id of 128 multibyte characters", ownerID: strings.Repeat("界", 128), cur: kwd,
			want: []domain.Event{domain.AccountOpened{AccountID: accountID, OwnerID: strings.Repeat("界", 128), Currency: "KWD", OpenedAt: t1}},
		},
		{
			name: "owner id of 128 emoji", ownerID: strings.Repeat("😀", 128), cur: usd,
			want: []domain.Event{domain.AccountOpened{AccountID: accountID, OwnerID: strings.Repeat("😀", 128), Currency: "USD", OpenedAt: t1}},
		},
		{
			name: "owner id of 128 ASCII characters", ownerID: strings.Repeat("a", 128), cur: usd,
			want: []domain.Event{domain.AccountOpened{AccountID: accountID, OwnerID: strings.Repeat("a", 128), Currency: "USD", OpenedAt: t1}},
		},
		{
			name: "owner id of one character", ownerID: "a", cur: usd,
			want: []domain.Event{domain.AccountOpened{AccountID: accountID, OwnerID: "a", Currency: "USD", OpenedAt: t1}},
		},
		{
			name: "owner id with inner spaces", ownerID: "Alice Smith", cur: usd,
			want: []domain.Event{domain.AccountOpened{AccountID: accountID, OwnerID: "Alice Smith", Currency: "USD", OpenedAt: t1}},
		},
		{name: "empty owner id", ownerID: "", cur: usd, wantField: []string{"owner_id"}},
		{name: "blank owner id", ownerID: "   ", cur: usd, wantField: []string{"owner_id"}},
		{name: "whitespace owner id", ownerID: "\t\n\u00a0\u3000", cur: usd, wantField: []string{"owner_id"}},
		{name: "owner id of 129 characters", ownerID: strings.Repeat("a", 129), cur: usd, wantField: []string{"owner_id"}},
		{name: "owner id of 129 multibyte characters", ownerID: strings.Repeat("界", 129), cur: usd, wantField: []string{"owner_id"}},
		{name: "owner id with NUL", ownerID: "ali\x00ce", cur: usd, wantField: []string{"owner_id"}},
		{name: "owner id with newline", ownerID: "alice\n", cur: usd, wantField: []string{"owner_id"}},
		{name: "owner id with tab", ownerID: "al\tice", cur: usd, wantField: []string{"owner_id"}},
		{name: "owner id with DEL", ownerID: "alice\x7f", cur: usd, wantField: []string{"owner_id"}},
		{name: "owner id with C1 control", ownerID: "alice\u0085", cur: usd, wantField: []string{"owner_id"}},
		{name: "owner id not UTF-8", ownerID: "alice\xff", cur: usd, wantField: []string{"owner_id"}},
		{name: "no currency", ownerID: "alice", cur: domain.Currency{}, wantField: []string{"currency"}},
		{name: "negative initial deposit", ownerID: "alice", cur: usd, initial: -1, wantField: []string{"initial_deposit"}},
		{name: "initial deposit above the limit", ownerID: "alice", cur: usd, initial: domain.MaxMinor + 1, wantField: []string{"initial_deposit"}},
		{
			name: "every field wrong", ownerID: " ", cur: domain.Currency{}, initial: -5,
			wantField: []string{"owner_id", "currency", "initial_deposit"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := domain.Open(accountID, tc.ownerID, tc.cur, tc.initial, t1)
			if tc.wantField != nil {
				if !errors.Is(err, domain.ErrInvalid) {
					t.Fatalf("Open() error = %v, want ErrInvalid", err)
				}
				if a != nil {
					t.Errorf("Open() returned an account alongside an error")
				}
				var verr *domain.ValidationError
				if !errors.As(err, &verr) {
					t.Fatalf("Open() error %T is not a *ValidationError", err)
				}
				var fields []string
				for _, f := range verr.Fields {
					fields = append(fields, f.Field)
					if f.Message == "" || strings.HasPrefix(f.Message, "invalid input") {
						t.Errorf("field %s: message %q", f.Field, f.Message)
					}
				}
				if diff := cmp.Diff(tc.wantField, fields); diff != "" {
					t.Errorf("invalid fields (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(): %v", err)
			}
			if diff := cmp.Diff(tc.want, a.Uncommitted()); diff != "" {
				t.Errorf("Uncommitted() (-want +got):\n%s", diff)
			}
			want := domain.AccountState{
				ID: accountID, OwnerID: tc.ownerID, Currency: tc.cur.Code(), BalanceMinor: tc.initial,
				Status: domain.StatusActive, Version: len(tc.want), OpenedAt: t1, UpdatedAt: t1,
			}
			if diff := cmp.Diff(want, a.State()); diff != "" {
				t.Errorf("State() (-want +got):\n%s", diff)
			}
			assertReplays(t, a, nil, t1)
		})
	}
}

func TestOpenStoresUTC(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 1, 2, 23, 30, 0, 0, time.FixedZone("UTC+5", 5*3600))
	a, err := domain.Open(accountID, "alice", usd, 100, at)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := a.Uncommitted()[0].(domain.AccountOpened)
	if !ok {
		t.Fatalf("first event is %T", a.Uncommitted()[0])
	}
	if e.OpenedAt.Location() != time.UTC || !e.OpenedAt.Equal(at) {
		t.Errorf("OpenedAt = %v, want %v in UTC", e.OpenedAt, at.UTC())
	}
	if a.UpdatedAt().Location() != time.UTC || a.OpenedAt().Location() != time.UTC {
		t.Errorf("OpenedAt() = %v, UpdatedAt() = %v, want UTC", a.OpenedAt(), a.UpdatedAt())
	}
}

func openWith(ownerID string, cur domain.Currency, initial int64) func(*domain.Account) error {
	return func(a *domain.Account) error { return a.Open(ownerID, cur, initial, t1) }
}

// TestOpenOnStream covers (*Account).Open, which the command handler runs on the
// aggregate it loaded: it opens only an empty stream.
func TestOpenOnStream(t *testing.T) {
	t.Parallel()
	runCommands(t, []command{
		{
			name: "empty stream", given: nil, when: openWith("alice", usd, 0),
			want: []domain.Event{domain.AccountOpened{AccountID: accountID, OwnerID: "alice", Currency: "USD", OpenedAt: t1}},
		},
		{
			name: "empty stream with initial deposit", given: nil, when: openWith("alice", jpy, 125),
			want: []domain.Event{
				domain.AccountOpened{AccountID: accountID, OwnerID: "alice", Currency: "JPY", OpenedAt: t1},
				domain.MoneyDeposited{AmountMinor: 125, Currency: "JPY", Description: "initial deposit"},
			},
		},
		{name: "already open", given: []domain.Event{opened()}, when: openWith("alice", usd, 0), wantErr: domain.ErrAccountExists},
		{name: "open with money", given: []domain.Event{opened(), deposited(5)}, when: openWith("bob", usd, 100), wantErr: domain.ErrAccountExists},
		{name: "closed", given: []domain.Event{opened(), closed()}, when: openWith("alice", usd, 0), wantErr: domain.ErrAccountExists},
		{name: "stream without AccountOpened", given: []domain.Event{deposited(7)}, when: openWith("alice", usd, 0), wantErr: domain.ErrAccountExists},
		// An existing account wins over bad input: the id is taken either way.
		{name: "already open, bad input", given: []domain.Event{opened()}, when: openWith("", domain.Currency{}, -1), wantErr: domain.ErrAccountExists},
		{name: "blank owner", given: nil, when: openWith(" ", usd, 0), wantErr: domain.ErrInvalid},
		{name: "no currency", given: nil, when: openWith("alice", domain.Currency{}, 0), wantErr: domain.ErrInvalid},
		{name: "initial deposit above the limit", given: nil, when: openWith("alice", usd, domain.MaxMinor+1), wantErr: domain.ErrInvalid},
	})
}

// command is one case of "given events, when a command, then events or an error".
type command struct {
	name    string
	given   []domain.Event
	when    func(a *domain.Account) error
	want    []domain.Event // new events when the command succeeds
	wantErr error          // matched with errors.Is
}

func runCommands(t *testing.T, tests []command) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := given(tc.given...)
			before := a.State()
			err := tc.when(a)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error = %v, want %v", err, tc.wantErr)
				}
				if got := a.Uncommitted(); len(got) != 0 {
					t.Errorf("a rejected command recorded %v", got)
				}
				if diff := cmp.Diff(before, a.State()); diff != "" {
					t.Errorf("a rejected command changed the state (-before +after):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tc.want, a.Uncommitted()); diff != "" {
				t.Errorf("Uncommitted() (-want +got):\n%s", diff)
			}
			if got, want := a.Version(), len(tc.given)+len(tc.want); got != want {
				t.Errorf("Version() = %d, want %d", got, want)
			}
			if got := a.UpdatedAt(); !got.Equal(t1) {
				t.Errorf("UpdatedAt() = %v, want %v", got, t1)
			}
			assertReplays(t, a, tc.given, t1)
		})
	}
}

// assertReplays checks that a fresh aggregate folding history (at t0) and then
// a's uncommitted events (at at) reaches a's state.
func assertReplays(t *testing.T, a *domain.Account, history []domain.Event, at time.Time) {
	t.Helper()
	replayed := given(history...)
	for _, e := range a.Uncommitted() {
		replayed.Apply(e, at)
	}
	if diff := cmp.Diff(a.State(), replayed.State()); diff != "" {
		t.Errorf("replayed state differs (-decided +replayed):\n%s", diff)
	}
}

func deposit(minor int64, cur domain.Currency, description string) func(*domain.Account) error {
	return func(a *domain.Account) error { return a.Deposit(minor, cur, description, t1) }
}

func withdraw(minor int64, cur domain.Currency, description string) func(*domain.Account) error {
	return func(a *domain.Account) error { return a.Withdraw(minor, cur, description, t1) }
}

func closeWith(reason string) func(*domain.Account) error {
	return func(a *domain.Account) error { return a.Close(reason, t1) }
}

func TestDeposit(t *testing.T) {
	t.Parallel()
	runCommands(t, []command{
		{
			name: "positive", given: []domain.Event{opened()}, when: deposit(12550, usd, "salary"),
			want: []domain.Event{domain.MoneyDeposited{AmountMinor: 12550, Currency: "USD", Description: "salary"}},
		},
		{
			name: "one minor unit", given: []domain.Event{opened(), deposited(5)}, when: deposit(1, usd, ""),
			want: []domain.Event{domain.MoneyDeposited{AmountMinor: 1, Currency: "USD"}},
		},
		{
			name: "JPY account", given: []domain.Event{openedIn("JPY")}, when: deposit(125, jpy, ""),
			want: []domain.Event{domain.MoneyDeposited{AmountMinor: 125, Currency: "JPY"}},
		},
		{
			name: "KWD account", given: []domain.Event{openedIn("KWD")}, when: deposit(1250, kwd, ""),
			want: []domain.Event{domain.MoneyDeposited{AmountMinor: 1250, Currency: "KWD"}},
		},
		{name: "zero", given: []domain.Event{opened()}, when: deposit(0, usd, ""), wantErr: domain.ErrInvalid},
		{name: "negative", given: []domain.Event{opened()}, when: deposit(-100, usd, ""), wantErr: domain.ErrInvalid},
		{name: "above the amount limit", given: []domain.Event{opened()}, when: deposit(domain.MaxMinor+1, usd, ""), wantErr: domain.ErrInvalid},
		{
			name: "the whole limit into an empty account", given: []domain.Event{opened()}, when: deposit(domain.MaxMinor, usd, ""),
			want: []domain.Event{domain.MoneyDeposited{AmountMinor: domain.MaxMinor, Currency: "USD"}},
		},
		{
			name: "balance reaches the limit exactly", given: []domain.Event{opened(), deposited(domain.MaxMinor - 1)}, when: deposit(1, usd, ""),
			want: []domain.Event{domain.MoneyDeposited{AmountMinor: 1, Currency: "USD"}},
		},
		{name: "balance would pass the limit", given: []domain.Event{opened(), deposited(domain.MaxMinor - 1)}, when: deposit(2, usd, ""), wantErr: domain.ErrBalanceLimitExceeded},
		{name: "balance at the limit", given: []domain.Event{opened(), deposited(domain.MaxMinor)}, when: deposit(1, usd, ""), wantErr: domain.ErrBalanceLimitExceeded},
		{name: "two maximal deposits", given: []domain.Event{opened(), deposited(domain.MaxMinor)}, when: deposit(domain.MaxMinor, usd, ""), wantErr: domain.ErrBalanceLimitExceeded},
		{name: "currency mismatch", given: []domain.Event{opened()}, when: deposit(100, eur, ""), wantErr: domain.ErrCurrencyMismatch},
		{name: "JPY into USD", given: []domain.Event{opened()}, when: deposit(100, jpy, ""), wantErr: domain.ErrCurrencyMismatch},
		{name: "no currency", given: []domain.Event{opened()}, when: deposit(100, domain.Currency{}, ""), wantErr: domain.ErrCurrencyMismatch},
		{name: "closed account", given: []domain.Event{opened(), closed()}, when: deposit(100, usd, ""), wantErr: domain.ErrAccountClosed},
		{name: "not opened", given: nil, when: deposit(100, usd, ""), wantErr: domain.ErrAccountNotFound},
		{
			name: "description of 500 characters", given: []domain.Event{opened()}, when: deposit(100, usd, strings.Repeat("d", 500)),
			want: []domain.Event{domain.MoneyDeposited{AmountMinor: 100, Currency: "USD", Description: strings.Repeat("d", 500)}},
		},
		{
			name: "description of 500 multibyte characters", given: []domain.Event{opened()}, when: deposit(100, usd, strings.Repeat("ü", 500)),
			want: []domain.Event{domain.MoneyDeposited{AmountMinor: 100, Currency: "USD", Description: strings.Repeat("ü", 500)}},
		},
		{name: "description of 501 characters", given: []domain.Event{opened()}, when: deposit(100, usd, strings.Repeat("d", 501)), wantErr: domain.ErrInvalid},
		{name: "description of 501 multibyte characters", given: []domain.Event{opened()}, when: deposit(100, usd, strings.Repeat("ü", 501)), wantErr: domain.ErrInvalid},
		{name: "description with newline", given: []domain.Event{opened()}, when: deposit(100, usd, "rent\nmarch"), wantErr: domain.ErrInvalid},
		{name: "description with NUL", given: []domain.Event{opened()}, when: deposit(100, usd, "rent\x00"), wantErr: domain.ErrInvalid},
		{name: "description with escape", given: []domain.Event{opened()}, when: deposit(100, usd, "\x1b[31mred"), wantErr: domain.ErrInvalid},
		{name: "description not UTF-8", given: []domain.Event{opened()}, when: deposit(100, usd, "\xc3\x28"), wantErr: domain.ErrInvalid},
	})
}

func TestWithdraw(t *testing.T) {
	t.Parallel()
	runCommands(t, []command{
		{
			name: "positive", given: []domain.Event{opened(), deposited(10000)}, when: withdraw(2550, usd, "groceries"),
			want: []domain.Event{domain.MoneyWithdrawn{AmountMinor: 2550, Currency: "USD", Description: "groceries"}},
		},
		{
			name: "exact balance", given: []domain.Event{opened(), deposited(10000), withdrawn(2500)}, when: withdraw(7500, usd, ""),
			want: []domain.Event{domain.MoneyWithdrawn{AmountMinor: 7500, Currency: "USD"}},
		},
		{
			name: "the whole limit", given: []domain.Event{opened(), deposited(domain.MaxMinor)}, when: withdraw(domain.MaxMinor, usd, ""),
			want: []domain.Event{domain.MoneyWithdrawn{AmountMinor: domain.MaxMinor, Currency: "USD"}},
		},
		{name: "insufficient funds", given: []domain.Event{opened(), deposited(10000)}, when: withdraw(10001, usd, ""), wantErr: domain.ErrInsufficientFunds},
		{name: "empty account", given: []domain.Event{opened()}, when: withdraw(1, usd, ""), wantErr: domain.ErrInsufficientFunds},
		{name: "after withdrawals", given: []domain.Event{opened(), deposited(100), withdrawn(60)}, when: withdraw(41, usd, ""), wantErr: domain.ErrInsufficientFunds},
		{name: "zero", given: []domain.Event{opened(), deposited(100)}, when: withdraw(0, usd, ""), wantErr: domain.ErrInvalid},
		{name: "negative", given: []domain.Event{opened(), deposited(100)}, when: withdraw(-1, usd, ""), wantErr: domain.ErrInvalid},
		{name: "above the amount limit", given: []domain.Event{opened(), deposited(domain.MaxMinor)}, when: withdraw(domain.MaxMinor+1, usd, ""), wantErr: domain.ErrInvalid},
		{name: "currency mismatch", given: []domain.Event{opened(), deposited(100)}, when: withdraw(50, eur, ""), wantErr: domain.ErrCurrencyMismatch},
		{name: "closed account", given: []domain.Event{opened(), closed()}, when: withdraw(100, usd, ""), wantErr: domain.ErrAccountClosed},
		{name: "not opened", given: nil, when: withdraw(100, usd, ""), wantErr: domain.ErrAccountNotFound},
		{
			name: "description of 500 characters", given: []domain.Event{opened(), deposited(100)}, when: withdraw(100, usd, strings.Repeat("w", 500)),
			want: []domain.Event{domain.MoneyWithdrawn{AmountMinor: 100, Currency: "USD", Description: strings.Repeat("w", 500)}},
		},
		{name: "description of 501 characters", given: []domain.Event{opened(), deposited(100)}, when: withdraw(100, usd, strings.Repeat("w", 501)), wantErr: domain.ErrInvalid},
		{name: "description with control character", given: []domain.Event{opened(), deposited(100)}, when: withdraw(100, usd, "cash\r"), wantErr: domain.ErrInvalid},
	})
}

func TestClose(t *testing.T) {
	t.Parallel()
	runCommands(t, []command{
		{
			name: "zero balance", given: []domain.Event{opened()}, when: closeWith("done"),
			want: []domain.Event{domain.AccountClosed{Reason: "done", ClosedAt: t1}},
		},
		{
			name: "no reason", given: []domain.Event{opened()}, when: closeWith(""),
			want: []domain.Event{domain.AccountClosed{Reason: "", ClosedAt: t1}},
		},
		{
			name: "emptied account", given: []domain.Event{opened(), deposited(500), withdrawn(500)}, when: closeWith(""),
			want: []domain.Event{domain.AccountClosed{ClosedAt: t1}},
		},
		{
			name: "reason of 500 characters", given: []domain.Event{opened()}, when: closeWith(strings.Repeat("r", 500)),
			want: []domain.Event{domain.AccountClosed{Reason: strings.Repeat("r", 500), ClosedAt: t1}},
		},
		{name: "non-zero balance", given: []domain.Event{opened(), deposited(1)}, when: closeWith(""), wantErr: domain.ErrBalanceNotZero},
		{name: "twice", given: []domain.Event{opened(), closed()}, when: closeWith(""), wantErr: domain.ErrAccountClosed},
		{name: "not opened", given: nil, when: closeWith(""), wantErr: domain.ErrAccountNotFound},
		{name: "reason of 501 characters", given: []domain.Event{opened()}, when: closeWith(strings.Repeat("r", 501)), wantErr: domain.ErrInvalid},
		{name: "reason with control character", given: []domain.Event{opened()}, when: closeWith("done\n"), wantErr: domain.ErrInvalid},
	})
}

func TestCloseRecordsUTC(t *testing.T) {
	t.Parallel()
	a := given(opened())
	at := time.Date(2024, 6, 1, 0, 30, 0, 0, time.FixedZone("UTC-7", -7*3600))
	if err := a.Close("", at); err != nil {
		t.Fatal(err)
	}
	e := a.Uncommitted()[0].(domain.AccountClosed)
	if e.ClosedAt.Location() != time.UTC || !e.ClosedAt.Equal(at) {
		t.Errorf("ClosedAt = %v, want %v", e.ClosedAt, at.UTC())
	}
	if a.Status() != domain.StatusClosed || !a.ClosedAt().Equal(at) {
		t.Errorf("Status() = %s, ClosedAt() = %v", a.Status(), a.ClosedAt())
	}
}

func TestCloseReasonIsFieldError(t *testing.T) {
	t.Parallel()
	err := given(opened()).Close("a\x00b", t1)
	var verr *domain.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Close() error = %v, want *ValidationError", err)
	}
	if len(verr.Fields) != 1 || verr.Fields[0].Field != "reason" {
		t.Errorf("fields = %+v, want one for reason", verr.Fields)
	}
}

func TestMovementErrorsNameTheField(t *testing.T) {
	t.Parallel()
	err := given(opened()).Deposit(0, usd, strings.Repeat("x", 501), t1)
	var verr *domain.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Deposit() error = %v, want *ValidationError", err)
	}
	var fields []string
	for _, f := range verr.Fields {
		fields = append(fields, f.Field)
	}
	if diff := cmp.Diff([]string{"amount", "description"}, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

// TestCommandSequence runs several commands on one aggregate, committing in
// between, and checks that replaying everything that was recorded, each event
// at its own time, gives the same state.
func TestCommandSequence(t *testing.T) {
	t.Parallel()
	type recorded struct {
		e  domain.Event
		at time.Time
	}
	var log []recorded
	commit := func(a *domain.Account, at time.Time) {
		for _, e := range a.Uncommitted() {
			log = append(log, recorded{e, at})
		}
		a.MarkCommitted()
		if len(a.Uncommitted()) != 0 {
			t.Fatalf("MarkCommitted left %v", a.Uncommitted())
		}
	}
	day := func(n int) time.Time { return t0.AddDate(0, 0, n) }

	a, err := domain.Open(accountID, "bob", eur, 10000, day(0))
	if err != nil {
		t.Fatal(err)
	}
	commit(a, day(0))
	steps := []struct {
		at time.Time
		do func(at time.Time) error
	}{
		{day(1), func(at time.Time) error { return a.Deposit(2500, eur, "gift", at) }},
		{day(2), func(at time.Time) error { return a.Withdraw(12000, eur, "rent", at) }},
		{day(3), func(at time.Time) error {
			// Two commands before one commit: both stay uncommitted, in order.
			if err := a.Deposit(1, eur, "", at); err != nil {
				return err
			}
			if err := a.Withdraw(501, eur, "", at); err != nil {
				return err
			}
			if got := len(a.Uncommitted()); got != 2 {
				t.Errorf("len(Uncommitted()) = %d, want 2", got)
			}
			return nil
		}},
		{day(4), func(at time.Time) error { return a.Close("moving abroad", at) }},
	}
	for i, s := range steps {
		if err := s.do(s.at); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		commit(a, s.at)
	}

	want := domain.AccountState{
		ID: accountID, OwnerID: "bob", Currency: "EUR", BalanceMinor: 0, Status: domain.StatusClosed,
		Version: 7, OpenedAt: day(0), UpdatedAt: day(4), ClosedAt: day(4),
	}
	if diff := cmp.Diff(want, a.State()); diff != "" {
		t.Errorf("State() (-want +got):\n%s", diff)
	}
	replayed := domain.NewAccount(accountID)
	for _, r := range log {
		replayed.Apply(r.e, r.at)
	}
	if diff := cmp.Diff(a.State(), replayed.State()); diff != "" {
		t.Errorf("replayed state (-decided +replayed):\n%s", diff)
	}
	if err := a.Deposit(1, eur, "", day(5)); !errors.Is(err, domain.ErrAccountClosed) {
		t.Errorf("Deposit after Close: %v, want ErrAccountClosed", err)
	}
}

// unknownEvent is an event type the aggregate does not know.
type unknownEvent struct{}

func (unknownEvent) EventType() string { return "SomethingElse" }

func TestApplyNeverFails(t *testing.T) {
	t.Parallel()
	// Histories no command would produce today are still facts: Apply folds
	// them without judging and advances the version by one per event.
	tests := []struct {
		name   string
		events []domain.Event
		want   domain.AccountState
	}{
		{
			name:   "nothing",
			events: nil,
			want:   domain.AccountState{ID: accountID},
		},
		{
			name:   "opened",
			events: []domain.Event{opened()},
			want:   domain.AccountState{ID: accountID, OwnerID: "alice", Currency: "USD", Status: domain.StatusActive, Version: 1, OpenedAt: t0, UpdatedAt: t0},
		},
		{
			name:   "overdrawn",
			events: []domain.Event{opened(), deposited(100), withdrawn(300)},
			want:   domain.AccountState{ID: accountID, OwnerID: "alice", Currency: "USD", BalanceMinor: -200, Status: domain.StatusActive, Version: 3, OpenedAt: t0, UpdatedAt: t0},
		},
		{
			name:   "above the limit",
			events: []domain.Event{opened(), deposited(domain.MaxMinor), deposited(domain.MaxMinor)},
			want:   domain.AccountState{ID: accountID, OwnerID: "alice", Currency: "USD", BalanceMinor: 2 * domain.MaxMinor, Status: domain.StatusActive, Version: 3, OpenedAt: t0, UpdatedAt: t0},
		},
		{
			name:   "deposit after close",
			events: []domain.Event{opened(), closed(), deposited(5)},
			want:   domain.AccountState{ID: accountID, OwnerID: "alice", Currency: "USD", BalanceMinor: 5, Status: domain.StatusClosed, Version: 3, OpenedAt: t0, UpdatedAt: t0, ClosedAt: t0},
		},
		{
			name:   "closed with money in it",
			events: []domain.Event{opened(), deposited(5), closed()},
			want:   domain.AccountState{ID: accountID, OwnerID: "alice", Currency: "USD", BalanceMinor: 5, Status: domain.StatusClosed, Version: 3, OpenedAt: t0, UpdatedAt: t0, ClosedAt: t0},
		},
		{
			name:   "money before opening",
			events: []domain.Event{deposited(7)},
			want:   domain.AccountState{ID: accountID, BalanceMinor: 7, Version: 1, UpdatedAt: t0},
		},
		{
			name:   "unknown currency",
			events: []domain.Event{openedIn("QQQ")},
			want:   domain.AccountState{ID: accountID, OwnerID: "alice", Currency: "QQQ", Status: domain.StatusActive, Version: 1, OpenedAt: t0, UpdatedAt: t0},
		},
		{
			name:   "unknown event type",
			events: []domain.Event{opened(), unknownEvent{}},
			want:   domain.AccountState{ID: accountID, OwnerID: "alice", Currency: "USD", Status: domain.StatusActive, Version: 2, OpenedAt: t0, UpdatedAt: t0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := domain.NewAccount(accountID)
			for i, e := range tc.events {
				a.Apply(e, t0)
				if got := a.Version(); got != i+1 {
					t.Errorf("after event %d: Version() = %d", i, got)
				}
			}
			if diff := cmp.Diff(tc.want, a.State()); diff != "" {
				t.Errorf("State() (-want +got):\n%s", diff)
			}
			if len(a.Uncommitted()) != 0 {
				t.Errorf("Apply recorded uncommitted events: %v", a.Uncommitted())
			}
		})
	}
}

func TestApplyTakesRecordedAtInUTC(t *testing.T) {
	t.Parallel()
	a := domain.NewAccount(accountID)
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.FixedZone("UTC+1", 3600))
	a.Apply(opened(), at)
	if got := a.UpdatedAt(); !got.Equal(at) || got.Location() != time.UTC {
		t.Errorf("UpdatedAt() = %v, want %v", got, at.UTC())
	}
}

func TestAccessors(t *testing.T) {
	t.Parallel()
	fresh := domain.NewAccount(accountID)
	if fresh.Exists() || fresh.Version() != 0 || fresh.ID() != accountID {
		t.Errorf("NewAccount: Exists %v, Version %d, ID %v", fresh.Exists(), fresh.Version(), fresh.ID())
	}
	a := given(openedIn("KWD"), domain.MoneyDeposited{AmountMinor: 1250, Currency: "KWD"})
	got := struct {
		ID       uuid.UUID
		OwnerID  string
		Currency domain.Currency
		Balance  int64
		Status   domain.Status
		Version  int
		Exists   bool
		OpenedAt time.Time
		ClosedAt time.Time
	}{a.ID(), a.OwnerID(), a.Currency(), a.Balance(), a.Status(), a.Version(), a.Exists(), a.OpenedAt(), a.ClosedAt()}
	if got.ID != accountID || got.OwnerID != "alice" || got.Currency != kwd || got.Balance != 1250 ||
		got.Status != domain.StatusActive || got.Version != 2 || !got.Exists || !got.OpenedAt.Equal(t0) || !got.ClosedAt.IsZero() {
		t.Errorf("accessors = %+v", got)
	}
	if got.Currency.Digits() != 3 {
		t.Errorf("Currency().Digits() = %d, want 3 (Apply must look the currency up)", got.Currency.Digits())
	}
}
