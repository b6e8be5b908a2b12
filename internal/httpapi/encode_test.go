package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/query"
)

// FuzzAccountEncoding holds the hand-written encoders to encoding/json: for
// any field values, marshalAccountState and marshalAccount write exactly the
// bytes json.Marshal writes, whether they take their fast path or not.
func FuzzAccountEncoding(f *testing.F) {
	f.Add([]byte("9b2f6c1e4a434c599a8e2f1f0c3b7d10"), "alice", "USD", "100.00", "open", 3, int64(1714564800123456789), int64(0), int64(-1), "UTC")
	f.Add([]byte("0123456789abcdef"), `a"b\c<d>&e`, "EUR", "-0.01", "closed", 0, int64(0), int64(1), int64(2), "CET")
	f.Add([]byte{0xff, 0}, "caf\u00e9 \u2028 \xff\x01\t", "", "", "", -7, int64(-1<<62), int64(253402300800), int64(4), "")
	f.Fuzz(func(t *testing.T, id []byte, owner, currency, balance, status string, version int, opened, updated, closed int64, zone string) {
		var u uuid.UUID
		copy(u[:], id)
		s := AccountState{ID: u, OwnerID: owner, Currency: currency, Balance: balance, Status: status, Version: version}
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := marshalAccountState(s); !bytes.Equal(got, want) {
			t.Fatalf("marshalAccountState\n got %s\nwant %s", got, want)
		}

		loc := time.UTC
		if zone != "" {
			loc = time.FixedZone(zone, int(closed%(18*3600)))
		}
		a := query.Account{
			ID: u, OwnerID: owner, Currency: currency, Balance: balance, Status: status, Version: version,
			OpenedAt: time.Unix(0, opened).In(loc), UpdatedAt: time.Unix(updated, 0).UTC(),
		}
		if closed%2 == 0 {
			c := time.Unix(closed, closed%1e9).In(loc)
			a.ClosedAt = &c
		}
		want, werr := json.Marshal(a)
		got, gerr := marshalAccount(a)
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("marshalAccount\n got %s (%v)\nwant %s (%v)", got, gerr, want, werr)
		}
	})
}

// The encoders name every field of their shapes: a field added to either
// struct must be added to its encoder too (and this count with it).
func TestAccountEncodingCoversEveryField(t *testing.T) {
	if n := reflect.TypeFor[AccountState]().NumField(); n != 6 {
		t.Errorf("AccountState has %d fields; appendAccountState writes 6", n)
	}
	if n := reflect.TypeFor[query.Account]().NumField(); n != 9 {
		t.Errorf("query.Account has %d fields; appendAccount writes 9", n)
	}
}

// BenchmarkAccountEncoding compares the hand-written encoders with
// json.Marshal on a typical account.
func BenchmarkAccountEncoding(b *testing.B) {
	now := time.Now().UTC()
	a := query.Account{
		ID: uuid.New(), OwnerID: "bench-17", Currency: "USD", Balance: "1234.56", Status: "open", Version: 42,
		OpenedAt: now, UpdatedAt: now,
	}
	s := AccountState{ID: a.ID, OwnerID: a.OwnerID, Currency: a.Currency, Balance: a.Balance, Status: a.Status, Version: a.Version}
	b.Run("state/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(s)
		}
	})
	b.Run("state/append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = marshalAccountState(s)
		}
	})
	b.Run("account/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(a)
		}
	})
	b.Run("account/append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = marshalAccount(a)
		}
	})
}

// A made request id is what uuid.NewString made: a random (version 4,
// RFC 9562 variant) UUID in its canonical form, and a well-formed
// X-Request-ID.
func TestNewRequestID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := newRequestID()
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 || u.String() != id || !validRequestID(id) {
			t.Fatalf("request id %q: %v, version %d, variant %v", id, err, u.Version(), u.Variant())
		}
		if seen[id] {
			t.Fatalf("request id %q made twice", id)
		}
		seen[id] = true
	}
}

// validRequestID is the contract's X-Request-ID pattern, written out.
func TestValidRequestIDIsThePattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	inputs := []string{"", "a", "req-1.2:3_4", strings.Repeat("x", 128), strings.Repeat("x", 129), "a b", "a/b", "é", "a\n", "\x00"}
	for c := range 256 {
		inputs = append(inputs, string([]byte{byte(c)}), "id"+string([]byte{byte(c)}))
	}
	for _, s := range inputs {
		if got, want := validRequestID(s), pattern.MatchString(s); got != want {
			t.Errorf("validRequestID(%q) = %v, the pattern says %v", s, got, want)
		}
	}
}
