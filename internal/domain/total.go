package domain

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
)

// Total is an exact, non-negative sum of minor units, such as a day's deposits.
// Each amount is bounded (MaxMinor), but how many an account may move in a day
// is not: about 9,300 legal cycles of depositing and withdrawing 10^15 pass
// 2^63, so an int64 would wrap. Total holds 128 bits, which no sequence of
// events can exhaust, and Add still fails loudly rather than wrap. The zero
// Total is 0; Totals compare with ==.
type Total struct{ hi, lo uint64 }

// ErrTotalOverflow is returned by Total.Add and ParseTotal past 2^128-1.
var ErrTotalOverflow = errors.New("total exceeds 128 bits")

// TotalOf returns minor as a Total. Errors: a negative minor.
func TotalOf(minor int64) (Total, error) {
	var t Total
	return t, t.Add(minor)
}

// Add adds minor to t. Errors: a negative minor (totals only grow), or
// ErrTotalOverflow; t is unchanged then.
func (t *Total) Add(minor int64) error {
	if minor < 0 {
		return fmt.Errorf("total: cannot add a negative amount (%d)", minor)
	}
	lo, carry := bits.Add64(t.lo, uint64(minor), 0)
	hi, over := bits.Add64(t.hi, 0, carry)
	if over != 0 {
		return ErrTotalOverflow
	}
	t.hi, t.lo = hi, lo
	return nil
}

// Plus returns t + u. Errors: ErrTotalOverflow.
func (t Total) Plus(u Total) (Total, error) {
	lo, carry := bits.Add64(t.lo, u.lo, 0)
	hi, over := bits.Add64(t.hi, u.hi, carry)
	if over != 0 {
		return Total{}, ErrTotalOverflow
	}
	return Total{hi: hi, lo: lo}, nil
}

// Int64 returns t and true when it fits an int64.
func (t Total) Int64() (int64, bool) {
	if t.hi != 0 || t.lo > 1<<63-1 {
		return 0, false
	}
	return int64(t.lo), true
}

// Big returns t as a new big.Int.
func (t Total) Big() *big.Int {
	b := new(big.Int).SetUint64(t.hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(t.lo))
}

// String prints t in minor units, in decimal ("123456").
func (t Total) String() string {
	if n, ok := t.Int64(); ok {
		return strconv.FormatInt(n, 10)
	}
	return t.Big().String()
}

// ParseTotal reads a decimal number of minor units as String prints it.
// Errors: anything but digits (a sign included), or ErrTotalOverflow.
func ParseTotal(s string) (Total, error) {
	if !allDigits(s) {
		return Total{}, fmt.Errorf("%w: total %q is not a whole number of minor units", ErrInvalid, s)
	}
	b, _ := new(big.Int).SetString(s, 10) // digits only: cannot fail
	if b.BitLen() > 128 {
		return Total{}, ErrTotalOverflow
	}
	lo := new(big.Int).And(b, new(big.Int).SetUint64(1<<64-1))
	return Total{hi: new(big.Int).Rsh(b, 64).Uint64(), lo: lo.Uint64()}, nil
}

// FormatTotal prints t in c with all of c's minor digits, as FormatAmount
// prints an amount ("123456789012345678901.00").
func FormatTotal(t Total, c Currency) string {
	if n, ok := t.Int64(); ok {
		return FormatAmount(n, c)
	}
	s := t.String()
	if c.digits > 0 {
		if len(s) <= c.digits {
			s = strings.Repeat("0", c.digits-len(s)+1) + s
		}
		s = s[:len(s)-c.digits] + "." + s[len(s)-c.digits:]
	}
	return s
}

// FormatMinorDecimal prints a signed whole number of minor units given as a
// decimal string of any size (a PostgreSQL numeric sum as text, "-12550") in
// c with all of c's minor digits, as FormatAmount prints an int64 ("-125.50").
// Errors: ErrInvalid for anything but an optional minus and digits.
func FormatMinorDecimal(s string, c Currency) (string, error) {
	digits, neg := strings.CutPrefix(s, "-")
	if !allDigits(digits) {
		return "", fmt.Errorf("%w: %q is not a whole number of minor units", ErrInvalid, s)
	}
	digits = strings.TrimLeft(digits, "0")
	if n := c.digits; n > 0 {
		if len(digits) <= n {
			digits = strings.Repeat("0", n-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-n] + "." + digits[len(digits)-n:]
	} else if digits == "" {
		digits = "0"
	}
	if neg && strings.Trim(digits, "0.") != "" {
		digits = "-" + digits
	}
	return digits, nil
}
