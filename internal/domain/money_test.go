package domain_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evbank/bank/internal/domain"
)

var (
	usd = domain.MustCurrency("USD")
	jpy = domain.MustCurrency("JPY")
	kwd = domain.MustCurrency("KWD")
	eur = domain.MustCurrency("EUR")
)

func TestParseCurrency(t *testing.T) {
	t.Parallel()
	type result struct {
		Code   string
		Digits int
	}
	valid := []struct {
		code string
		want result
	}{
		{"USD", result{"USD", 2}},
		{"JPY", result{"JPY", 0}},
		{"KWD", result{"KWD", 3}},
		{"EUR", result{"EUR", 2}},
		{"GBP", result{"GBP", 2}},
		{"CHF", result{"CHF", 2}}, // cash rounding of 0.05 is not the minor unit
		{"BHD", result{"BHD", 3}},
		{"TND", result{"TND", 3}},
		{"KRW", result{"KRW", 0}},
		{"CLF", result{"CLF", 4}},
		// ISO 4217 minor units where CLDR (golang.org/x/text) differs.
		{"IQD", result{"IQD", 3}},
		{"IDR", result{"IDR", 2}},
		{"COP", result{"COP", 2}},
		{"PKR", result{"PKR", 2}},
		{"RSD", result{"RSD", 2}},
		{"HUF", result{"HUF", 2}},
		// Current ISO 4217 codes newer than golang.org/x/text's table.
		{"VES", result{"VES", 2}},
		{"MRU", result{"MRU", 2}},
		{"SLE", result{"SLE", 2}},
		{"UYW", result{"UYW", 4}},
	}
	for _, tc := range valid {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			c, err := domain.ParseCurrency(tc.code)
			if err != nil {
				t.Fatalf("ParseCurrency(%q): %v", tc.code, err)
			}
			got := result{Code: c.Code(), Digits: c.Digits()}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseCurrency(%q) (-want +got):\n%s", tc.code, diff)
			}
			if c.String() != tc.code || c.IsZero() {
				t.Errorf("String() = %q, IsZero() = %v", c.String(), c.IsZero())
			}
			if c != domain.MustCurrency(tc.code) {
				t.Errorf("ParseCurrency and MustCurrency disagree for %q", tc.code)
			}
		})
	}

	invalid := []string{
		"usd", "Usd", "uSD", // lower case
		"XXX", "XAU", "XAG", "XPT", "XPD", "XTS", "XDR", "XSU", "XUA", "XBA", // no minor units
		"ABC", "ZZZ", // unknown
		"", "US", "USDX", " USD", "USD ", "U$D", "123", "ＵＳＤ",
	}
	for _, code := range invalid {
		t.Run("invalid/"+code, func(t *testing.T) {
			t.Parallel()
			c, err := domain.ParseCurrency(code)
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("ParseCurrency(%q) = %v, %v; want error wrapping ErrInvalid", code, c, err)
			}
			if !c.IsZero() {
				t.Errorf("ParseCurrency(%q) returned non-zero currency %v with error", code, c)
			}
		})
	}
}

func TestMustCurrencyPanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("MustCurrency(\"usd\") did not panic")
		}
	}()
	domain.MustCurrency("usd")
}

func TestZeroCurrency(t *testing.T) {
	t.Parallel()
	var c domain.Currency
	if !c.IsZero() || c.Code() != "" || c.Digits() != 0 {
		t.Errorf("zero Currency: IsZero %v, Code %q, Digits %d", c.IsZero(), c.Code(), c.Digits())
	}
}

func TestParseAmount(t *testing.T) {
	t.Parallel()
	valid := []struct {
		in   string
		cur  domain.Currency
		want int64
	}{
		{"125.50", usd, 12550},
		{"125.5", usd, 12550},
		{"125", usd, 12500},
		{"1.0", usd, 100},
		{"0.01", usd, 1},
		{"0.05", usd, 5},
		{"0", usd, 0}, // zero parses; commands refuse it
		{"0.0", usd, 0},
		{"0.00", usd, 0},
		{"10", usd, 1000},
		{"100.00", usd, 10000},
		{"125", jpy, 125},
		{"0", jpy, 0},
		{"1.250", kwd, 1250},
		{"1.25", kwd, 1250},
		{"0.001", kwd, 1},
		{"99.99", eur, 9999},
		// The limit is 10^15 minor units, inclusive.
		{"10000000000000.00", usd, domain.MaxMinor},
		{"10000000000000", usd, domain.MaxMinor},
		{"9999999999999.99", usd, domain.MaxMinor - 1},
		{"1000000000000000", jpy, domain.MaxMinor},
		{"1000000000000.000", kwd, domain.MaxMinor},
	}
	for _, tc := range valid {
		t.Run(tc.cur.Code()+"/"+tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := domain.ParseAmount(tc.in, tc.cur)
			if err != nil {
				t.Fatalf("ParseAmount(%q, %s): %v", tc.in, tc.cur, err)
			}
			if got != tc.want {
				t.Errorf("ParseAmount(%q, %s) = %d, want %d", tc.in, tc.cur, got, tc.want)
			}
		})
	}

	invalid := []struct {
		in  string
		cur domain.Currency
	}{
		{"1.234", usd},    // more fraction digits than the currency has
		{"0.001", usd},    // even when the value would be below one minor unit
		{"1.000", usd},    // even trailing zeros
		{"1.0", jpy},      // JPY has no fraction digits at all
		{"1.00", jpy},     //
		{"125.5", jpy},    //
		{"1.2500", kwd},   //
		{"1e5", usd},      // exponent
		{"1E5", usd},      //
		{"1.5e2", usd},    //
		{"+1", usd},       // sign
		{"-1", usd},       //
		{"-0", usd},       //
		{"01", usd},       // leading zeros
		{"00", usd},       //
		{"00.5", usd},     //
		{"007", jpy},      //
		{"1.", usd},       // dot without digits
		{".5", usd},       //
		{".", usd},        //
		{"", usd},         // blank
		{" ", usd},        //
		{" 1", usd},       //
		{"1 ", usd},       //
		{"1\n", usd},      //
		{"\t1", usd},      //
		{"１", usd},        // full-width digit
		{"١", usd},        // Arabic-Indic digit
		{"1٫5", usd},      // Arabic decimal separator
		{"0x10", usd},     // hex
		{"0b1", usd},      //
		{"1,00", usd},     // decimal comma
		{"1,000.00", usd}, // thousands separator
		{"1_000", usd},    //
		{"1.2.3", usd},    // two dots
		{"1..2", usd},     //
		{"NaN", usd},      //
		{"Inf", usd},      //
		{"1/2", usd},      //
		{"\"1\"", usd},    //
		{"1\x00", usd},    //
		{"\xff", usd},     // invalid UTF-8
		// Above 10^15 minor units.
		{"10000000000000.01", usd},   // 10^15 + 1
		{"10000000000001", usd},      //
		{"99999999999999.99", usd},   //
		{"1000000000000001", jpy},    //
		{"1000000000000.001", kwd},   //
		{"9223372036854775807", jpy}, // int64 max
		{"9223372036854775808", jpy}, // int64 max + 1
		{"92233720368547758.07", usd},
		{"18446744073709551616", jpy}, // uint64 max + 1
		{strings.Repeat("9", 10_000), usd},
		{"1" + strings.Repeat("0", 10_000) + ".00", usd},
		{strings.Repeat("1", 100) + ".5", usd},
	}
	for _, tc := range invalid {
		name := tc.in
		if len(name) > 40 {
			name = name[:40] + "..."
		}
		t.Run(tc.cur.Code()+"/"+name, func(t *testing.T) {
			t.Parallel()
			got, err := domain.ParseAmount(tc.in, tc.cur)
			if !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("ParseAmount(%q, %s) = %d, %v; want error wrapping ErrInvalid", tc.in, tc.cur, got, err)
			}
			if got != 0 {
				t.Errorf("ParseAmount(%q, %s) returned %d alongside an error", tc.in, tc.cur, got)
			}
		})
	}
}

func TestFormatAmount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		minor int64
		cur   domain.Currency
		want  string
	}{
		{10000, usd, "100.00"},
		{12550, usd, "125.50"},
		{5, usd, "0.05"},
		{50, usd, "0.50"},
		{100, usd, "1.00"},
		{0, usd, "0.00"},
		{-5, usd, "-0.05"},
		{-12550, usd, "-125.50"},
		{domain.MaxMinor, usd, "10000000000000.00"},
		{100, jpy, "100"},
		{0, jpy, "0"},
		{-100, jpy, "-100"},
		{1250, kwd, "1.250"},
		{1, kwd, "0.001"},
		{0, kwd, "0.000"},
		{-1, kwd, "-0.001"},
		{domain.MaxMinor, kwd, "1000000000000.000"},
		{math.MaxInt64, usd, "92233720368547758.07"},
		{math.MinInt64, usd, "-92233720368547758.08"},
		{math.MinInt64, jpy, "-9223372036854775808"},
	}
	for _, tc := range tests {
		if got := domain.FormatAmount(tc.minor, tc.cur); got != tc.want {
			t.Errorf("FormatAmount(%d, %s) = %q, want %q", tc.minor, tc.cur, got, tc.want)
		}
	}
}

func TestFormatParseRoundTrip(t *testing.T) {
	t.Parallel()
	amounts := []int64{0, 1, 9, 10, 99, 100, 101, 12550, 999_999, domain.MaxMinor - 1, domain.MaxMinor}
	for _, cur := range []domain.Currency{usd, jpy, kwd, domain.MustCurrency("CLF")} {
		for _, m := range amounts {
			s := domain.FormatAmount(m, cur)
			got, err := domain.ParseAmount(s, cur)
			if err != nil || got != m {
				t.Errorf("ParseAmount(FormatAmount(%d, %s) = %q) = %d, %v", m, cur, s, got, err)
			}
		}
	}
}

func TestMajorToMinor(t *testing.T) {
	t.Parallel()
	valid := []struct {
		in   string
		cur  domain.Currency
		want int64
	}{
		{"125.5", usd, 12550},
		{"125.50", usd, 12550},
		{"125", usd, 12500},
		{"1e2", usd, 10000},
		{"1E2", usd, 10000},
		{"1e+2", usd, 10000},
		{"1.25e2", usd, 12500},
		{"12550e-2", usd, 12550},
		{"0.01", usd, 1},
		{"1.000", usd, 100}, // exact: trailing zeros do not matter here
		{"0", usd, 0},
		{"-0", usd, 0},
		{"0.0", usd, 0},
		{"125", jpy, 125},
		{"1.25e2", jpy, 125},
		{"1.25", kwd, 1250},
		{"0.001", kwd, 1},
		{"1e13", usd, domain.MaxMinor},
		{"10000000000000.00", usd, domain.MaxMinor},
		// Binary floating point would turn these into ...9999 or ...0001.
		{"0.1", usd, 10},
		{"0.29", usd, 29},
		{"1.15", usd, 115},
		{"4.35", usd, 435},
		{"9007199254740.99", usd, 900719925474099},
	}
	for _, tc := range valid {
		got, err := domain.MajorToMinor(tc.in, tc.cur)
		if err != nil {
			t.Errorf("MajorToMinor(%q, %s): %v", tc.in, tc.cur, err)
			continue
		}
		if got != tc.want {
			t.Errorf("MajorToMinor(%q, %s) = %d, want %d", tc.in, tc.cur, got, tc.want)
		}
	}

	invalid := []struct {
		in  string
		cur domain.Currency
	}{
		{"0.001", usd}, // never rounds
		{"0.005", usd},
		{"125.555", usd},
		{"1e-3", usd},
		{"0.5", jpy},
		{"125.5", jpy},
		{"0.0001", kwd},
		{"-1", usd}, // negative
		{"-0.01", usd},
		{"-1e2", usd},
		{"1e13.5", usd},
		{"10000000000000.01", usd}, // above 10^15 minor units
		{"1e14", usd},
		{"1e400", usd},
		{"1e9999999999", usd}, // beyond what math/big will parse
		{"9223372036854775808", jpy},
		{"", usd}, // not a (JSON) number
		{"abc", usd},
		{"NaN", usd},
		{"Inf", usd},
		{"1/4", usd},
		{"0x10", usd},
		{"0b101", usd},
		{"0o17", usd},
		{"1_000", usd},
		{"+5", usd},
		{".5", usd},
		{"5.", usd},
		{"01", usd},
		{" 5", usd},
		{"5 ", usd},
	}
	for _, tc := range invalid {
		got, err := domain.MajorToMinor(tc.in, tc.cur)
		if !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("MajorToMinor(%q, %s) = %d, %v; want error wrapping ErrInvalid", tc.in, tc.cur, got, err)
		}
	}
}
