package domain_test

import (
	"regexp"
	"testing"

	"github.com/evbank/bank/internal/domain"
)

// amountForm is the accepted amount form of DESIGN section 2.
var amountForm = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.[0-9]+)?$`)

// FuzzParseAmount checks, for any input and the currencies with 2, 0 and 3 minor
// digits, that ParseAmount never panics, accepts only the documented form, keeps
// to [0, MaxMinor], and that FormatAmount prints a string parsing back to the
// same amount. Found failures live in testdata/fuzz/FuzzParseAmount.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{
		"125.50", "125.5", "125", "1.0", "1.250", "0", "0.00", "0.05",
		"1.234", "1e5", "+1", "-1", "01", "00", "1.", ".5", "", " 1", "1 ",
		"１", "0x10", "1,00", "1.2.3",
		"10000000000000.00", "10000000000000.01", "1000000000000000", "1000000000000001",
		"1000000000000.000", "1000000000000.001",
		"9223372036854775807", "9223372036854775808", "99999999999999999999.99",
		"0000000000000000000000001",
	} {
		f.Add(s)
	}
	currencies := []domain.Currency{
		domain.MustCurrency("USD"), domain.MustCurrency("JPY"), domain.MustCurrency("KWD"),
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, cur := range currencies {
			m, err := domain.ParseAmount(s, cur)
			if err != nil {
				if m != 0 {
					t.Errorf("ParseAmount(%q, %s) = %d with error %v", s, cur, m, err)
				}
				continue
			}
			if !amountForm.MatchString(s) {
				t.Errorf("ParseAmount(%q, %s) = %d, but the input is not of the accepted form", s, cur, m)
			}
			if m < 0 || m > domain.MaxMinor {
				t.Errorf("ParseAmount(%q, %s) = %d, outside [0, MaxMinor]", s, cur, m)
			}
			printed := domain.FormatAmount(m, cur)
			back, err := domain.ParseAmount(printed, cur)
			if err != nil || back != m {
				t.Errorf("ParseAmount(%q, %s) = %d; FormatAmount gives %q, which parses to %d, %v", s, cur, m, printed, back, err)
			}
		}
	})
}

// FuzzMajorToMinor checks the legacy amount conversion: it never panics, keeps to
// [0, MaxMinor], and agrees with ParseAmount on the amount's printed form.
func FuzzMajorToMinor(f *testing.F) {
	for _, s := range []string{"125.5", "1e2", "0.001", "-1", "1.25e2", "12550e-2", "1e400", "1/4", "0x10", "-0", "0.29"} {
		f.Add(s)
	}
	currencies := []domain.Currency{
		domain.MustCurrency("USD"), domain.MustCurrency("JPY"), domain.MustCurrency("KWD"),
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 64 {
			return // big exponents are slow by nature, not by bug
		}
		for _, cur := range currencies {
			m, err := domain.MajorToMinor(s, cur)
			if err != nil {
				continue
			}
			if m < 0 || m > domain.MaxMinor {
				t.Errorf("MajorToMinor(%q, %s) = %d, outside [0, MaxMinor]", s, cur, m)
			}
			printed := domain.FormatAmount(m, cur)
			if back, err := domain.ParseAmount(printed, cur); err != nil || back != m {
				t.Errorf("MajorToMinor(%q, %s) = %d, but ParseAmount(%q) = %d, %v", s, cur, m, printed, back, err)
			}
			if back, err := domain.MajorToMinor(printed, cur); err != nil || back != m {
				t.Errorf("MajorToMinor(%q, %s) = %d, but MajorToMinor(%q) = %d, %v", s, cur, m, printed, back, err)
			}
		}
	})
}
