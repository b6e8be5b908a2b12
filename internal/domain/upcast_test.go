package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evbank/bank/internal/domain"
)

// upcastCase is one legacy (schema version 1) document and what it becomes.
type upcastCase struct {
	name     string
	uc       domain.UpcastContext
	data     string
	wantJSON string       // the v2 document the upcaster returns
	want     domain.Event // what DecodeEvent returns for the same stored event
	fails    bool
	// decodeFails: the upcaster passes the document on, DecodeEvent rejects it.
	decodeFails bool
}

func runUpcaster(t *testing.T, typ string, up domain.Upcaster, tests []upcastCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := []byte(tc.data)
			got, err := up(data, tc.uc)
			decoded, decodeErr := domain.DecodeEvent(typ, 1, data, tc.uc)
			if tc.fails || tc.decodeFails {
				if err == nil && !tc.decodeFails {
					t.Errorf("upcaster(%s) = %s; want an error", tc.data, got)
				}
				if decodeErr == nil {
					t.Errorf("DecodeEvent(%s, v1, %s) = %#v; want an error", typ, tc.data, decoded)
				}
				return
			}
			if err != nil {
				t.Fatalf("upcaster(%s): %v", tc.data, err)
			}
			jsonEqual(t, tc.wantJSON, got)
			if decodeErr != nil {
				t.Fatalf("DecodeEvent(%s, v1, %s): %v", typ, tc.data, decodeErr)
			}
			if diff := cmp.Diff(tc.want, decoded); diff != "" {
				t.Errorf("DecodeEvent (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpcastAccountOpenedV1(t *testing.T) {
	t.Parallel()
	openedAt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	runUpcaster(t, "AccountOpened", domain.UpcastAccountOpenedV1, []upcastCase{
		{
			name:     "default USD",
			uc:       ucUSD,
			data:     `{"accountId":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","ownerId":"alice","openedAt":"2020-01-02T03:04:05Z"}`,
			wantJSON: `{"account_id":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","owner_id":"alice","currency":"USD","opened_at":"2020-01-02T03:04:05Z"}`,
			want:     domain.AccountOpened{AccountID: accountID, OwnerID: "alice", Currency: "USD", OpenedAt: openedAt},
		},
		{
			name:     "default JPY",
			uc:       domain.UpcastContext{DefaultCurrency: jpy},
			data:     `{"accountId":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","ownerId":"bob","openedAt":"2020-01-02T03:04:05Z"}`,
			wantJSON: `{"account_id":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","owner_id":"bob","currency":"JPY","opened_at":"2020-01-02T03:04:05Z"}`,
			want:     domain.AccountOpened{AccountID: accountID, OwnerID: "bob", Currency: "JPY", OpenedAt: openedAt},
		},
		{
			name:     "fields reordered, time with offset",
			uc:       ucUSD,
			data:     `{"openedAt":"2020-01-02T05:04:05.5+02:00","ownerId":"alice","accountId":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10"}`,
			wantJSON: `{"account_id":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","owner_id":"alice","currency":"USD","opened_at":"2020-01-02T05:04:05.5+02:00"}`,
			want:     domain.AccountOpened{AccountID: accountID, OwnerID: "alice", Currency: "USD", OpenedAt: openedAt.Add(500 * time.Millisecond)},
		},
		{name: "v2 fields", uc: ucUSD, data: `{"account_id":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","owner_id":"alice","currency":"USD","opened_at":"2020-01-02T03:04:05Z"}`, fails: true},
		{name: "unknown field", uc: ucUSD, data: `{"accountId":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","ownerId":"alice","openedAt":"2020-01-02T03:04:05Z","balance":0}`, fails: true},
		{name: "account id not a UUID", uc: ucUSD, data: `{"accountId":"acc-1","ownerId":"alice","openedAt":"2020-01-02T03:04:05Z"}`, decodeFails: true},
		{name: "bad time", uc: ucUSD, data: `{"accountId":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","ownerId":"alice","openedAt":"02/01/2020"}`, fails: true},
		{name: "not JSON", uc: ucUSD, data: `accountId=1`, fails: true},
		{name: "no default currency", uc: domain.UpcastContext{}, data: `{"accountId":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","ownerId":"alice","openedAt":"2020-01-02T03:04:05Z"}`, fails: true},
	})
}

func TestUpcastMoneyMovedV1(t *testing.T) {
	t.Parallel()
	moved := func(typ string) []upcastCase {
		event := func(minor int64, code, description string) domain.Event {
			if typ == "MoneyDeposited" {
				return domain.MoneyDeposited{AmountMinor: minor, Currency: code, Description: description}
			}
			return domain.MoneyWithdrawn{AmountMinor: minor, Currency: code, Description: description}
		}
		return []upcastCase{
			{
				name:     "fraction in USD",
				uc:       ucUSD,
				data:     `{"amount":125.5,"description":"x","timestamp":"2020-01-02T03:04:05Z"}`,
				wantJSON: `{"amount_minor":12550,"currency":"USD","description":"x"}`,
				want:     event(12550, "USD", "x"),
			},
			{
				name:     "whole number",
				uc:       ucUSD,
				data:     `{"amount":100,"description":"","timestamp":"2020-01-02T03:04:05Z"}`,
				wantJSON: `{"amount_minor":10000,"currency":"USD","description":""}`,
				want:     event(10000, "USD", ""),
			},
			{
				name:     "exponent",
				uc:       ucUSD,
				data:     `{"amount":1e2,"description":"","timestamp":"2020-01-02T03:04:05Z"}`,
				wantJSON: `{"amount_minor":10000,"currency":"USD","description":""}`,
				want:     event(10000, "USD", ""),
			},
			{
				name:     "negative exponent",
				uc:       ucUSD,
				data:     `{"amount":125E-2,"description":"","timestamp":"2020-01-02T03:04:05Z"}`,
				wantJSON: `{"amount_minor":125,"currency":"USD","description":""}`,
				want:     event(125, "USD", ""),
			},
			{
				name:     "not representable as float64, still exact",
				uc:       ucUSD,
				data:     `{"amount":9999999999999.99,"description":"","timestamp":"2020-01-02T03:04:05Z"}`,
				wantJSON: `{"amount_minor":999999999999999,"currency":"USD","description":""}`,
				want:     event(999999999999999, "USD", ""),
			},
			{
				name:     "a binary-float trap",
				uc:       ucUSD,
				data:     `{"amount":0.29,"description":"","timestamp":"2020-01-02T03:04:05Z"}`,
				wantJSON: `{"amount_minor":29,"currency":"USD","description":""}`,
				want:     event(29, "USD", ""),
			},
			{
				name:     "the limit",
				uc:       ucUSD,
				data:     `{"amount":10000000000000,"description":"","timestamp":"2020-01-02T03:04:05Z"}`,
				wantJSON: `{"amount_minor":1000000000000000,"currency":"USD","description":""}`,
				want:     event(domain.MaxMinor, "USD", ""),
			},
			{
				name:     "zero",
				uc:       ucUSD,
				data:     `{"amount":0,"description":"","timestamp":"2020-01-02T03:04:05Z"}`,
				wantJSON: `{"amount_minor":0,"currency":"USD","description":""}`,
				want:     event(0, "USD", ""),
			},
			{
				name:     "default JPY",
				uc:       domain.UpcastContext{DefaultCurrency: jpy},
				data:     `{"amount":125,"description":"yen","timestamp":"2020-01-02T03:04:05Z"}`,
				wantJSON: `{"amount_minor":125,"currency":"JPY","description":"yen"}`,
				want:     event(125, "JPY", "yen"),
			},
			{
				name:     "default KWD",
				uc:       domain.UpcastContext{DefaultCurrency: kwd},
				data:     `{"amount":1.25,"description":"","timestamp":"2020-01-02T03:04:05Z"}`,
				wantJSON: `{"amount_minor":1250,"currency":"KWD","description":""}`,
				want:     event(1250, "KWD", ""),
			},
			{
				name:     "no timestamp, no description",
				uc:       ucUSD,
				data:     `{"amount":1}`,
				wantJSON: `{"amount_minor":100,"currency":"USD","description":""}`,
				want:     event(100, "USD", ""),
			},
			{
				name:     "null timestamp",
				uc:       ucUSD,
				data:     `{"amount":1,"description":"d","timestamp":null}`,
				wantJSON: `{"amount_minor":100,"currency":"USD","description":"d"}`,
				want:     event(100, "USD", "d"),
			},
			// Amounts that do not fit the minor units fail loudly, never round.
			{name: "sub-cent in USD", uc: ucUSD, data: `{"amount":0.001,"description":"x","timestamp":"2020-01-02T03:04:05Z"}`, fails: true},
			{name: "half a cent in USD", uc: ucUSD, data: `{"amount":125.555,"description":"x","timestamp":"2020-01-02T03:04:05Z"}`, fails: true},
			{name: "fraction in JPY", uc: domain.UpcastContext{DefaultCurrency: jpy}, data: `{"amount":125.5,"description":"","timestamp":"2020-01-02T03:04:05Z"}`, fails: true},
			{name: "negative", uc: ucUSD, data: `{"amount":-5,"description":"","timestamp":"2020-01-02T03:04:05Z"}`, fails: true},
			{name: "above the limit", uc: ucUSD, data: `{"amount":10000000000000.01,"description":"","timestamp":"2020-01-02T03:04:05Z"}`, fails: true},
			{name: "huge exponent", uc: ucUSD, data: `{"amount":1e400,"description":"","timestamp":"2020-01-02T03:04:05Z"}`, fails: true},
			{name: "missing amount", uc: ucUSD, data: `{"description":"","timestamp":"2020-01-02T03:04:05Z"}`, fails: true},
			{name: "null amount", uc: ucUSD, data: `{"amount":null,"description":"","timestamp":"2020-01-02T03:04:05Z"}`, fails: true},
			{name: "amount as bool", uc: ucUSD, data: `{"amount":true,"description":"","timestamp":"2020-01-02T03:04:05Z"}`, fails: true},
			{name: "amount not a number", uc: ucUSD, data: `{"amount":"lots","description":"","timestamp":"2020-01-02T03:04:05Z"}`, fails: true},
			{name: "v2 fields", uc: ucUSD, data: `{"amount_minor":12550,"currency":"USD","description":"x"}`, fails: true},
			{name: "unknown field", uc: ucUSD, data: `{"amount":1,"currency":"EUR","description":"","timestamp":"2020-01-02T03:04:05Z"}`, fails: true},
			{name: "bad timestamp", uc: ucUSD, data: `{"amount":1,"description":"","timestamp":"noon"}`, fails: true},
			{name: "no default currency", uc: domain.UpcastContext{}, data: `{"amount":125,"description":"","timestamp":"2020-01-02T03:04:05Z"}`, fails: true},
		}
	}
	t.Run("MoneyDeposited", func(t *testing.T) {
		t.Parallel()
		runUpcaster(t, "MoneyDeposited", domain.UpcastMoneyMovedV1, moved("MoneyDeposited"))
	})
	t.Run("MoneyWithdrawn", func(t *testing.T) {
		t.Parallel()
		runUpcaster(t, "MoneyWithdrawn", domain.UpcastMoneyMovedV1, moved("MoneyWithdrawn"))
	})
}

func TestUpcastAmountErrorsAreInvalid(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		`{"amount":0.001,"description":"x","timestamp":"2020-01-02T03:04:05Z"}`,
		`{"amount":-1,"description":"x","timestamp":"2020-01-02T03:04:05Z"}`,
		`{"description":"x"}`,
	} {
		_, err := domain.UpcastMoneyMovedV1([]byte(data), ucUSD)
		if !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("UpcastMoneyMovedV1(%s) = %v, want ErrInvalid", data, err)
		}
		_, err = domain.DecodeEvent("MoneyDeposited", 1, []byte(data), ucUSD)
		if !errors.Is(err, domain.ErrInvalid) || errors.Is(err, domain.ErrUnknownEvent) {
			t.Errorf("DecodeEvent(MoneyDeposited v1, %s) = %v, want ErrInvalid and not ErrUnknownEvent", data, err)
		}
	}
}

func TestUpcastAccountClosedV1(t *testing.T) {
	t.Parallel()
	runUpcaster(t, "AccountClosed", domain.UpcastAccountClosedV1, []upcastCase{
		{
			name:     "reason and time",
			uc:       ucUSD,
			data:     `{"reason":"done","closedAt":"2020-01-02T03:04:05Z"}`,
			wantJSON: `{"reason":"done","closed_at":"2020-01-02T03:04:05Z"}`,
			want:     domain.AccountClosed{Reason: "done", ClosedAt: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)},
		},
		{
			name:     "empty reason",
			uc:       ucUSD,
			data:     `{"reason":"","closedAt":"2020-01-02T03:04:05.000001Z"}`,
			wantJSON: `{"reason":"","closed_at":"2020-01-02T03:04:05.000001Z"}`,
			want:     domain.AccountClosed{ClosedAt: time.Date(2020, 1, 2, 3, 4, 5, 1000, time.UTC)},
		},
		{
			name:     "no default currency needed",
			uc:       domain.UpcastContext{},
			data:     `{"reason":"done","closedAt":"2020-01-02T03:04:05Z"}`,
			wantJSON: `{"reason":"done","closed_at":"2020-01-02T03:04:05Z"}`,
			want:     domain.AccountClosed{Reason: "done", ClosedAt: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)},
		},
		{name: "v2 fields", uc: ucUSD, data: `{"reason":"done","closed_at":"2020-01-02T03:04:05Z"}`, fails: true},
		{name: "bad time", uc: ucUSD, data: `{"reason":"done","closedAt":"2020-13-45"}`, fails: true},
		{name: "reason not a string", uc: ucUSD, data: `{"reason":1,"closedAt":"2020-01-02T03:04:05Z"}`, fails: true},
	})
}

func TestUpcastUnknown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ     string
		version int
	}{
		{"MoneyTransferred", 1},
		{"MoneyTransferred", 2},
		{"accountOpened", 1},
		{"", 1},
		{"AccountOpened", 0},
		{"AccountOpened", 3},
		{"MoneyDeposited", 0},
		{"MoneyDeposited", 3},
		{"MoneyWithdrawn", -1},
		{"AccountClosed", 3},
	}
	data := []byte(`{"accountId":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","ownerId":"alice","openedAt":"2020-01-02T03:04:05Z"}`)
	for _, tc := range tests {
		got, err := domain.DecodeEvent(tc.typ, tc.version, data, ucUSD)
		if !errors.Is(err, domain.ErrUnknownEvent) {
			t.Errorf("DecodeEvent(%q, v%d) = %#v, %v; want ErrUnknownEvent", tc.typ, tc.version, got, err)
		}
		if tc.version == 2 {
			continue // Upcast has nothing to do for the current version, whatever the type
		}
		if _, err := domain.Upcast(tc.typ, tc.version, data, ucUSD); !errors.Is(err, domain.ErrUnknownEvent) {
			t.Errorf("Upcast(%q, v%d) = %v, want ErrUnknownEvent", tc.typ, tc.version, err)
		}
	}
}

func TestUpcastCurrentVersionIsIdentity(t *testing.T) {
	t.Parallel()
	data := []byte(`{"amount_minor":1,"currency":"USD","description":""}`)
	got, err := domain.Upcast("MoneyDeposited", 2, data, domain.UpcastContext{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(data), string(got)); diff != "" {
		t.Errorf("Upcast at v2 changed the data (-want +got):\n%s", diff)
	}
}

// TestUpcastDoesNotTouchInput guards "stored events are never rewritten": the
// upcasters must not write into the caller's buffer.
func TestUpcastDoesNotTouchInput(t *testing.T) {
	t.Parallel()
	for typ, data := range map[string]string{
		"AccountOpened":  `{"accountId":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","ownerId":"alice","openedAt":"2020-01-02T03:04:05Z"}`,
		"MoneyDeposited": `{"amount":125.5,"description":"x","timestamp":"2020-01-02T03:04:05Z"}`,
		"AccountClosed":  `{"reason":"done","closedAt":"2020-01-02T03:04:05Z"}`,
	} {
		buf := []byte(data)
		if _, err := domain.DecodeEvent(typ, 1, buf, ucUSD); err != nil {
			t.Fatalf("DecodeEvent(%s v1): %v", typ, err)
		}
		if string(buf) != data {
			t.Errorf("DecodeEvent(%s v1) changed its input to %s", typ, buf)
		}
	}
}
