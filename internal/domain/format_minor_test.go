package domain_test

import (
	"strconv"
	"testing"

	"github.com/evbank/bank/internal/domain"
)

func TestFormatMinorDecimal(t *testing.T) {
	t.Parallel()
	curs := []domain.Currency{domain.MustCurrency("USD"), domain.MustCurrency("JPY"), domain.MustCurrency("KWD"), domain.MustCurrency("UYW")}
	// Within int64 it prints what domain.FormatAmount prints.
	for _, c := range curs {
		for _, n := range []int64{0, 1, 9, 10, 99, 100, 101, 1234, 12345, 100000, domain.MaxMinor, 9_223_372_036_854_775_807, -1, -12345} {
			got, err := domain.FormatMinorDecimal(strconv.FormatInt(n, 10), c)
			if want := domain.FormatAmount(n, c); err != nil || got != want {
				t.Errorf("%s %d: got %q, %v; want %q", c, n, got, err, want)
			}
		}
	}
	// Beyond int64, and the forms numeric::text can take.
	tests := []struct {
		in, cur, want string
	}{
		{"18446744073709551617", "USD", "184467440737095516.17"},
		{"18446744073709551617", "JPY", "18446744073709551617"},
		{"00012", "USD", "0.12"},
		{"-0", "USD", "0.00"},
	}
	for _, tt := range tests {
		got, err := domain.FormatMinorDecimal(tt.in, domain.MustCurrency(tt.cur))
		if err != nil || got != tt.want {
			t.Errorf("%s %s: got %q, %v; want %q", tt.in, tt.cur, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "-", "1.5", "1e3", "abc", " 1"} {
		if got, err := domain.FormatMinorDecimal(bad, domain.MustCurrency("USD")); err == nil {
			t.Errorf("%q: got %q, want an error", bad, got)
		}
	}
}
