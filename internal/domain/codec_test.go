package domain_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evbank/bank/internal/domain"
)

var ucUSD = domain.UpcastContext{DefaultCurrency: usd}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		event    domain.Event
		wantType string
		wantJSON string
	}{
		{
			event:    domain.AccountOpened{AccountID: accountID, OwnerID: "alice", Currency: "USD", OpenedAt: time.Date(2020, 1, 2, 3, 4, 5, 123456789, time.UTC)},
			wantType: "AccountOpened",
			wantJSON: `{"account_id":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","owner_id":"alice","currency":"USD","opened_at":"2020-01-02T03:04:05.123456789Z"}`,
		},
		{
			event:    domain.AccountOpened{AccountID: accountID, OwnerID: "名前 \"quoted\" <tag>", Currency: "JPY", OpenedAt: time.Date(2020, 1, 2, 3, 4, 5, 0, time.FixedZone("", 9*3600))},
			wantType: "AccountOpened",
			wantJSON: `{"account_id":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","owner_id":"名前 \"quoted\" \u003ctag\u003e","currency":"JPY","opened_at":"2020-01-02T03:04:05+09:00"}`,
		},
		{
			event:    domain.MoneyDeposited{AmountMinor: 12550, Currency: "USD", Description: "salary"},
			wantType: "MoneyDeposited",
			wantJSON: `{"amount_minor":12550,"currency":"USD","description":"salary"}`,
		},
		{
			event:    domain.MoneyDeposited{AmountMinor: domain.MaxMinor, Currency: "KWD", Description: ""},
			wantType: "MoneyDeposited",
			wantJSON: `{"amount_minor":1000000000000000,"currency":"KWD","description":""}`,
		},
		{
			event:    domain.MoneyWithdrawn{AmountMinor: 1, Currency: "EUR", Description: "café"},
			wantType: "MoneyWithdrawn",
			wantJSON: `{"amount_minor":1,"currency":"EUR","description":"café"}`,
		},
		{
			event:    domain.AccountClosed{Reason: "done", ClosedAt: time.Date(2021, 12, 31, 23, 59, 59, 0, time.UTC)},
			wantType: "AccountClosed",
			wantJSON: `{"reason":"done","closed_at":"2021-12-31T23:59:59Z"}`,
		},
		{
			event:    domain.AccountClosed{},
			wantType: "AccountClosed",
			wantJSON: `{"reason":"","closed_at":"0001-01-01T00:00:00Z"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.wantType, func(t *testing.T) {
			t.Parallel()
			typ, version, data, err := domain.EncodeEvent(tc.event)
			if err != nil {
				t.Fatalf("EncodeEvent(%#v): %v", tc.event, err)
			}
			if typ != tc.wantType || version != 2 {
				t.Errorf("EncodeEvent: type %q, schema version %d; want %q, 2", typ, version, tc.wantType)
			}
			if diff := cmp.Diff(tc.wantJSON, string(data)); diff != "" {
				t.Errorf("EncodeEvent data (-want +got):\n%s", diff)
			}
			// The default currency must not matter for current events.
			for _, uc := range []domain.UpcastContext{ucUSD, {DefaultCurrency: jpy}, {}} {
				got, err := domain.DecodeEvent(typ, version, data, uc)
				if err != nil {
					t.Fatalf("DecodeEvent(%s): %v", data, err)
				}
				if diff := cmp.Diff(tc.event, got); diff != "" {
					t.Errorf("round trip (-encoded +decoded):\n%s", diff)
				}
			}
		})
	}
}

func TestDecodeEventV2(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		typ     string
		data    string
		want    domain.Event
		wantErr error // nil: any error; ErrUnknownEvent where that is the cause
		fails   bool
	}{
		{
			name: "opened", typ: "AccountOpened",
			data: `{"account_id":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","owner_id":"alice","currency":"USD","opened_at":"2020-01-02T03:04:05Z"}`,
			want: domain.AccountOpened{AccountID: accountID, OwnerID: "alice", Currency: "USD", OpenedAt: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)},
		},
		{
			name: "deposited, fields reordered", typ: "MoneyDeposited",
			data: `{"description":"x","currency":"USD","amount_minor":12550}`,
			want: domain.MoneyDeposited{AmountMinor: 12550, Currency: "USD", Description: "x"},
		},
		{
			name: "withdrawn", typ: "MoneyWithdrawn",
			data: `{"amount_minor":99,"currency":"JPY","description":""}`,
			want: domain.MoneyWithdrawn{AmountMinor: 99, Currency: "JPY"},
		},
		{
			name: "closed", typ: "AccountClosed",
			data: `{"reason":"done","closed_at":"2020-01-02T03:04:05Z"}`,
			want: domain.AccountClosed{Reason: "done", ClosedAt: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)},
		},
		{name: "unknown field", typ: "MoneyDeposited", data: `{"amount_minor":1,"currency":"USD","description":"","extra":1}`, fails: true},
		{name: "v1 fields under v2", typ: "MoneyDeposited", data: `{"amount":125.5,"description":"x","timestamp":"2020-01-02T03:04:05Z"}`, fails: true},
		{name: "v1 opened under v2", typ: "AccountOpened", data: `{"accountId":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","ownerId":"alice","openedAt":"2020-01-02T03:04:05Z"}`, fails: true},
		{name: "amount as fraction", typ: "MoneyDeposited", data: `{"amount_minor":125.5,"currency":"USD","description":""}`, fails: true},
		{name: "amount as string", typ: "MoneyDeposited", data: `{"amount_minor":"12550","currency":"USD","description":""}`, fails: true},
		{name: "amount beyond int64", typ: "MoneyWithdrawn", data: `{"amount_minor":9223372036854775808,"currency":"USD","description":""}`, fails: true},
		{name: "bad account id", typ: "AccountOpened", data: `{"account_id":"not-a-uuid","owner_id":"alice","currency":"USD","opened_at":"2020-01-02T03:04:05Z"}`, fails: true},
		{name: "bad time", typ: "AccountClosed", data: `{"reason":"","closed_at":"yesterday"}`, fails: true},
		{name: "not JSON", typ: "AccountClosed", data: `{"reason":`, fails: true},
		{name: "JSON array", typ: "AccountClosed", data: `[]`, fails: true},
		{name: "empty data", typ: "AccountClosed", data: ``, fails: true},
		{name: "unknown type", typ: "MoneyTransferred", data: `{}`, wantErr: domain.ErrUnknownEvent},
		{name: "type in wrong case", typ: "moneydeposited", data: `{"amount_minor":1,"currency":"USD","description":""}`, wantErr: domain.ErrUnknownEvent},
		{name: "empty type", typ: "", data: `{}`, wantErr: domain.ErrUnknownEvent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := domain.DecodeEvent(tc.typ, 2, []byte(tc.data), ucUSD)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("DecodeEvent(%s) = %#v, %v; want %v", tc.data, got, err, tc.wantErr)
				}
			case tc.fails:
				if err == nil {
					t.Fatalf("DecodeEvent(%s) = %#v; want an error", tc.data, got)
				}
				if errors.Is(err, domain.ErrUnknownEvent) {
					t.Errorf("DecodeEvent(%s): bad data reported as an unknown event: %v", tc.data, err)
				}
			default:
				if err != nil {
					t.Fatalf("DecodeEvent(%s): %v", tc.data, err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("DecodeEvent (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestDecodeEventUnknownSchemaVersion(t *testing.T) {
	t.Parallel()
	v2 := map[string]string{
		"AccountOpened":  `{"account_id":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","owner_id":"alice","currency":"USD","opened_at":"2020-01-02T03:04:05Z"}`,
		"MoneyDeposited": `{"amount_minor":1,"currency":"USD","description":""}`,
		"MoneyWithdrawn": `{"amount_minor":1,"currency":"USD","description":""}`,
		"AccountClosed":  `{"reason":"","closed_at":"2020-01-02T03:04:05Z"}`,
	}
	for typ, data := range v2 {
		for _, version := range []int{0, 3, -1, 99} {
			got, err := domain.DecodeEvent(typ, version, []byte(data), ucUSD)
			if !errors.Is(err, domain.ErrUnknownEvent) {
				t.Errorf("DecodeEvent(%s, v%d) = %#v, %v; want ErrUnknownEvent", typ, version, got, err)
			}
		}
	}
}

// TestDecodedEventsReplay folds decoded events of both schema versions, as the
// aggregate does when it loads a stream written partly by the legacy service.
func TestDecodedEventsReplay(t *testing.T) {
	t.Parallel()
	stored := []struct {
		typ     string
		version int
		data    string
	}{
		{"AccountOpened", 1, `{"accountId":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","ownerId":"alice","openedAt":"2020-01-02T03:04:05Z"}`},
		{"MoneyDeposited", 1, `{"amount":125.5,"description":"x","timestamp":"2020-01-02T03:04:05Z"}`},
		{"MoneyWithdrawn", 1, `{"amount":0.5,"description":"fee","timestamp":"2020-01-03T03:04:05Z"}`},
		{"MoneyDeposited", 2, `{"amount_minor":1000,"currency":"USD","description":"new service"}`},
		{"MoneyWithdrawn", 2, `{"amount_minor":13500,"currency":"USD","description":""}`},
		{"AccountClosed", 2, `{"reason":"done","closed_at":"2024-01-01T00:00:00Z"}`},
	}
	a := domain.NewAccount(accountID)
	for _, s := range stored {
		e, err := domain.DecodeEvent(s.typ, s.version, []byte(s.data), ucUSD)
		if err != nil {
			t.Fatalf("DecodeEvent(%s v%d): %v", s.typ, s.version, err)
		}
		a.Apply(e, t0)
	}
	want := domain.AccountState{
		ID: accountID, OwnerID: "alice", Currency: "USD", BalanceMinor: 0, Status: domain.StatusClosed, Version: 6,
		OpenedAt: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), UpdatedAt: t0, ClosedAt: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	if diff := cmp.Diff(want, a.State()); diff != "" {
		t.Errorf("State() (-want +got):\n%s", diff)
	}
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, want string, got []byte) {
	t.Helper()
	var w, g any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON %s: %v", want, err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("result is not JSON: %s: %v", got, err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}
