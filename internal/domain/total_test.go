package domain_test

import (
	"errors"
	"math/big"
	"testing"

	"github.com/evbank/bank/internal/domain"
)

// TestTotalPastInt64 adds what a day of legal events can add: past 2^63 the
// sum stays exact where an int64 would wrap.
func TestTotalPastInt64(t *testing.T) {
	var sum domain.Total
	want := new(big.Int)
	for range 10_000 {
		if err := sum.Add(domain.MaxMinor); err != nil {
			t.Fatal(err)
		}
		want.Add(want, big.NewInt(domain.MaxMinor))
	}
	if sum.Big().Cmp(want) != 0 || sum.String() != want.String() {
		t.Fatalf("sum = %s, want %s", sum, want)
	}
	if _, ok := sum.Int64(); ok {
		t.Fatal("Int64 reports a total past 2^63 as fitting")
	}
	back, err := domain.ParseTotal(sum.String())
	if err != nil || back != sum {
		t.Fatalf("ParseTotal(%s) = %s, %v", sum, back, err)
	}
	usd := domain.MustCurrency("USD")
	if got := domain.FormatTotal(sum, usd); got != "100000000000000000.00" {
		t.Fatalf("FormatTotal = %s", got)
	}
	if got := domain.FormatTotal(domain.Total{}, domain.MustCurrency("KWD")); got != "0.000" {
		t.Fatalf("FormatTotal(0, KWD) = %s", got)
	}
}

func TestTotalFailsLoudly(t *testing.T) {
	max, err := domain.ParseTotal("340282366920938463463374607431768211455") // 2^128-1
	if err != nil {
		t.Fatal(err)
	}
	if err := max.Add(1); !errors.Is(err, domain.ErrTotalOverflow) {
		t.Fatalf("Add past 2^128-1 = %v, want ErrTotalOverflow", err)
	}
	if _, err := max.Plus(max); !errors.Is(err, domain.ErrTotalOverflow) {
		t.Fatalf("Plus past 2^128-1 = %v", err)
	}
	if _, err := domain.ParseTotal("340282366920938463463374607431768211456"); !errors.Is(err, domain.ErrTotalOverflow) {
		t.Fatalf("ParseTotal(2^128) = %v", err)
	}
	var t0 domain.Total
	if err := t0.Add(-1); err == nil {
		t.Fatal("Add(-1) accepted")
	}
	for _, s := range []string{"", "-1", "+1", "1.0", "1e3"} {
		if _, err := domain.ParseTotal(s); err == nil {
			t.Errorf("ParseTotal(%q) accepted", s)
		}
	}
}
