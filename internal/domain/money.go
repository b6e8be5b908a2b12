package domain

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/text/currency"
)

// FallbackCurrency is the currency of accounts opened without one, and of
// legacy events, where no other default is configured (DEFAULT_CURRENCY).
var FallbackCurrency = MustCurrency("USD")

// MaxMinor is the largest amount, and the largest balance, the service holds:
// 10^15 minor units, far inside int64 so that sums of two never overflow.
const MaxMinor int64 = 1_000_000_000_000_000

// Currency is an ISO 4217 currency that has minor units.
type Currency struct {
	code   string
	digits int
}

// noMinorUnits are ISO 4217 codes whose minor unit is "N.A." (metals, funds, testing
// codes); golang.org/x/text reports a default of 2 digits for them, which would be a lie.
var noMinorUnits = map[string]bool{
	"XAG": true, "XAU": true, "XBA": true, "XBB": true, "XBC": true, "XBD": true,
	"XDR": true, "XPD": true, "XPT": true, "XSU": true, "XTS": true, "XUA": true, "XXX": true,
}

// isoMinorUnits holds the ISO 4217 minor unit of codes where golang.org/x/text
// is wrong or silent: its digits come from CLDR 32 (2017), which gives 0 for
// currencies ISO 4217 divides into hundredths (IQD: thousandths), and its table
// lacks the codes introduced since.
var isoMinorUnits = map[string]int{
	// CLDR digits that differ from ISO 4217.
	"AFN": 2, "ALL": 2, "AMD": 2, "COP": 2, "GYD": 2, "IDR": 2, "IQD": 3, "IRR": 2,
	"KPW": 2, "LAK": 2, "LBP": 2, "MGA": 2, "MMK": 2, "MNT": 2, "MUR": 2, "PKR": 2,
	"RSD": 2, "SLL": 2, "SOS": 2, "SYP": 2, "TZS": 2, "UZS": 2, "YER": 2,
	// Codes newer than the x/text table.
	"MRU": 2, "SLE": 2, "UYW": 4, "VED": 2, "VES": 2, "XCG": 2, "ZWG": 2,
}

// ParseCurrency returns the currency for an upper-case ISO 4217 code, or an error
// wrapping ErrInvalid for lower case, unknown codes and codes without minor units.
func ParseCurrency(code string) (Currency, error) {
	if len(code) != 3 || strings.ToUpper(code) != code || strings.IndexFunc(code, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
		return Currency{}, fmt.Errorf("%w: currency must be an upper-case ISO 4217 code", ErrInvalid)
	}
	if noMinorUnits[code] {
		return Currency{}, fmt.Errorf("%w: currency %s has no minor units", ErrInvalid, code)
	}
	if digits, ok := isoMinorUnits[code]; ok {
		return Currency{code: code, digits: digits}, nil
	}
	unit, err := currency.ParseISO(code)
	if err != nil {
		return Currency{}, fmt.Errorf("%w: unknown currency %s", ErrInvalid, code)
	}
	digits, _ := currency.Standard.Rounding(unit)
	return Currency{code: code, digits: digits}, nil
}

// MustCurrency is ParseCurrency for constants in tests and defaults; it panics on error.
func MustCurrency(code string) Currency {
	c, err := ParseCurrency(code)
	if err != nil {
		panic(err)
	}
	return c
}

// Code returns the ISO 4217 code.
func (c Currency) Code() string { return c.code }

// Digits returns the number of minor-unit digits (USD 2, JPY 0, KWD 3).
func (c Currency) Digits() int { return c.digits }

// IsZero reports whether c is the zero Currency (no currency).
func (c Currency) IsZero() bool { return c.code == "" }

func (c Currency) String() string { return c.code }

// ParseAmount parses a decimal string in major units ("125.50") into minor units
// of c. It accepts ^(0|[1-9][0-9]*)(\.[0-9]+)?$ with at most c.Digits() fraction
// digits and at most MaxMinor minor units; zero is allowed here and refused by the
// commands that need a positive amount. Errors wrap ErrInvalid.
func ParseAmount(s string, c Currency) (int64, error) {
	intPart, frac, hasDot := strings.Cut(s, ".")
	switch {
	case s == "":
		return 0, fmt.Errorf("%w: amount is empty", ErrInvalid)
	case !allDigits(intPart) || (hasDot && !allDigits(frac)):
		return 0, fmt.Errorf("%w: amount must be a plain decimal number such as \"125.50\"", ErrInvalid)
	case len(intPart) > 1 && intPart[0] == '0':
		return 0, fmt.Errorf("%w: amount must not have leading zeros", ErrInvalid)
	case len(frac) > c.digits:
		if c.digits == 0 {
			return 0, fmt.Errorf("%w: %s amounts have no fraction digits", ErrInvalid, c.code)
		}
		return 0, fmt.Errorf("%w: %s amounts have at most %d fraction digits", ErrInvalid, c.code, c.digits)
	}
	// MaxMinor has 16 digits; anything longer overflows the limit, and checking
	// first keeps ParseInt away from int64 overflow.
	digits := intPart + frac + strings.Repeat("0", c.digits-len(frac))
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return 0, nil
	}
	if len(digits) > 16 {
		return 0, fmt.Errorf("%w: amount exceeds the limit of %s", ErrInvalid, FormatAmount(MaxMinor, c))
	}
	minor, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || minor > MaxMinor {
		return 0, fmt.Errorf("%w: amount exceeds the limit of %s", ErrInvalid, FormatAmount(MaxMinor, c))
	}
	return minor, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatAmount prints minor units of c with all of c's minor digits ("100.00", JPY "100").
func FormatAmount(minor int64, c Currency) string {
	neg := minor < 0
	u := uint64(minor)
	if neg {
		u = uint64(-minor)
	}
	s := strconv.FormatUint(u, 10)
	if c.digits > 0 {
		if len(s) <= c.digits {
			s = strings.Repeat("0", c.digits-len(s)+1) + s
		}
		s = s[:len(s)-c.digits] + "." + s[len(s)-c.digits:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// jsonNumber is the number grammar of RFC 8259.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// MajorToMinor converts an exact decimal number in major units (as written by the
// legacy v1 events: a JSON number such as 125.5 or 1e2) to minor units of c. It
// refuses, never rounds, a value that does not fit c's minor units.
func MajorToMinor(number string, c Currency) (int64, error) {
	if n, ok := plainMajorToMinor(number, c); ok {
		return n, nil
	}
	// big.Rat alone would also take "1/4", "0x10", "1_000", "+5" and ".5".
	if !jsonNumber.MatchString(number) {
		return 0, fmt.Errorf("%w: %q is not a JSON number", ErrInvalid, number)
	}
	r, ok := new(big.Rat).SetString(number)
	if !ok {
		return 0, fmt.Errorf("%w: %q is not a number", ErrInvalid, number)
	}
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(c.digits)), nil)
	r.Mul(r, new(big.Rat).SetInt(scale))
	if !r.IsInt() {
		return 0, fmt.Errorf("%w: %s is not a whole number of %s minor units", ErrInvalid, number, c.code)
	}
	n := r.Num()
	if n.Sign() < 0 || !n.IsInt64() || n.Int64() > MaxMinor {
		return 0, fmt.Errorf("%w: %s is out of range for %s", ErrInvalid, number, c.code)
	}
	return n.Int64(), nil
}

// plainMajorToMinor is MajorToMinor's fast path for the common form: digits
// (no leading zero), then optionally a point and at most c's fraction digits,
// at most 18 digits in all, no sign or exponent, at most MaxMinor minor units.
// It reports false for anything else, which MajorToMinor then reads exactly.
func plainMajorToMinor(number string, c Currency) (int64, bool) {
	intPart, frac, hasPoint := strings.Cut(number, ".")
	if intPart == "" || (len(intPart) > 1 && intPart[0] == '0') ||
		(hasPoint && (frac == "" || len(frac) > c.digits)) || len(intPart)+len(frac) > 18 {
		return 0, false
	}
	var n int64
	for _, part := range [2]string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			d := part[i]
			if d < '0' || d > '9' {
				return 0, false
			}
			n = n*10 + int64(d-'0')
		}
	}
	for range c.digits - len(frac) {
		if n > MaxMinor {
			return 0, false
		}
		n *= 10
	}
	if n > MaxMinor {
		return 0, false
	}
	return n, true
}
