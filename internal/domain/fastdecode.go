package domain

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// The fast path below decodes the four current (v2) event shapes without
// reflection. It accepts only the plain form EncodeEvent writes: one object,
// keys spelled exactly as the struct tags and each at most once, strings
// without escapes, control characters or invalid UTF-8, amounts as plain
// integers of at most 18 digits, no nulls, nothing after the object but
// whitespace. For any other input it reports false and the caller decodes with
// decodeStrict, so every accepted input decodes exactly as encoding/json
// would, and every error (unknown fields, wrong types, bad JSON) comes from
// encoding/json as before.

// fastScanner reads a flat JSON object.
type fastScanner struct {
	b     []byte
	i     int
	first bool
}

func (s *fastScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// open reads the opening brace.
func (s *fastScanner) open() bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	s.first = true
	return true
}

// member reads the next key and its colon; end reports that the object closed
// and only whitespace follows it.
func (s *fastScanner) member() (key []byte, end, ok bool) {
	s.ws()
	if s.i >= len(s.b) {
		return nil, false, false
	}
	switch c := s.b[s.i]; {
	case c == '}':
		s.i++
		s.ws()
		return nil, true, s.i == len(s.b)
	case s.first:
		s.first = false
	case c == ',':
		s.i++
		s.ws()
	default:
		return nil, false, false
	}
	key, ok = s.str()
	if !ok {
		return nil, false, false
	}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return nil, false, false
	}
	s.i++
	s.ws()
	return key, false, true
}

// str reads a string without escapes or control characters and returns its
// contents, which are valid UTF-8.
func (s *fastScanner) str() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			v := s.b[start:j]
			return v, ascii || utf8.Valid(v)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// quoted reads a string as str does and returns it with its quotes.
func (s *fastScanner) quoted() ([]byte, bool) {
	start := s.i
	if _, ok := s.str(); !ok {
		return nil, false
	}
	return s.b[start:s.i], true
}

// int64 reads an integer of at most 18 digits without fraction or exponent.
func (s *fastScanner) int64() (int64, bool) {
	j := s.i
	neg := j < len(s.b) && s.b[j] == '-'
	if neg {
		j++
	}
	start := j
	var n int64
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
		n = n*10 + int64(s.b[j]-'0')
		j++
	}
	digits := j - start
	if digits == 0 || digits > 18 || (digits > 1 && s.b[start] == '0') {
		return 0, false
	}
	if j < len(s.b) {
		switch s.b[j] {
		case ' ', '\t', '\n', '\r', ',', '}':
		default:
			return 0, false
		}
	}
	s.i = j
	if neg {
		n = -n
	}
	return n, true
}

// seen marks bit in *mask, reporting false when the key came before.
func seen(mask *uint8, bit uint8) bool {
	if *mask&bit != 0 {
		return false
	}
	*mask |= bit
	return true
}

func fastAccountOpened(data []byte, v *AccountOpened) bool {
	s := fastScanner{b: data}
	if !s.open() {
		return false
	}
	var mask uint8
	for {
		key, end, ok := s.member()
		if !ok {
			return false
		}
		if end {
			return true
		}
		switch string(key) {
		case "account_id":
			raw, ok := s.str()
			if !ok || !seen(&mask, 1) || v.AccountID.UnmarshalText(raw) != nil {
				return false
			}
		case "owner_id":
			raw, ok := s.str()
			if !ok || !seen(&mask, 2) {
				return false
			}
			v.OwnerID = string(raw)
		case "currency":
			raw, ok := s.str()
			if !ok || !seen(&mask, 4) {
				return false
			}
			v.Currency = string(raw)
		case "opened_at":
			raw, ok := s.quoted()
			if !ok || !seen(&mask, 8) || v.OpenedAt.UnmarshalJSON(raw) != nil {
				return false
			}
		default:
			return false
		}
	}
}

// fastMoneyMoved decodes MoneyDeposited and MoneyWithdrawn, which have the same fields.
func fastMoneyMoved(data []byte, amount *int64, currency, description *string) bool {
	s := fastScanner{b: data}
	if !s.open() {
		return false
	}
	var mask uint8
	for {
		key, end, ok := s.member()
		if !ok {
			return false
		}
		if end {
			return true
		}
		switch string(key) {
		case "amount_minor":
			n, ok := s.int64()
			if !ok || !seen(&mask, 1) {
				return false
			}
			*amount = n
		case "currency":
			raw, ok := s.str()
			if !ok || !seen(&mask, 2) {
				return false
			}
			*currency = string(raw)
		case "description":
			raw, ok := s.str()
			if !ok || !seen(&mask, 4) {
				return false
			}
			*description = string(raw)
		default:
			return false
		}
	}
}

func fastAccountClosed(data []byte, v *AccountClosed) bool {
	s := fastScanner{b: data}
	if !s.open() {
		return false
	}
	var mask uint8
	for {
		key, end, ok := s.member()
		if !ok {
			return false
		}
		if end {
			return true
		}
		switch string(key) {
		case "reason":
			raw, ok := s.str()
			if !ok || !seen(&mask, 1) {
				return false
			}
			v.Reason = string(raw)
		case "closed_at":
			raw, ok := s.quoted()
			if !ok || !seen(&mask, 2) || v.ClosedAt.UnmarshalJSON(raw) != nil {
				return false
			}
		default:
			return false
		}
	}
}

// number reads a JSON number (RFC 8259 grammar) and returns its text.
func (s *fastScanner) number() ([]byte, bool) {
	b, j := s.b, s.i
	digits := func() int {
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j - k
	}
	if j < len(b) && b[j] == '-' {
		j++
	}
	start := j
	if n := digits(); n == 0 || (n > 1 && b[start] == '0') {
		return nil, false
	}
	if j < len(b) && b[j] == '.' {
		j++
		if digits() == 0 {
			return nil, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	if j < len(b) {
		switch b[j] {
		case ' ', '\t', '\n', '\r', ',', '}':
		default:
			return nil, false
		}
	}
	v := b[s.i:j]
	s.i = j
	return v, true
}

// fastMoneyMovedV1 is the fast path for the legacy (v1) MoneyDeposited and
// MoneyWithdrawn shape, as the v2 ones above: it reports false for anything
// but the plain form (amount a bare number, timestamp a plain string or
// absent), which decodeV1 then reads.
func fastMoneyMovedV1(data []byte, v *moneyMovedV1) bool {
	s := fastScanner{b: data}
	if !s.open() {
		return false
	}
	var mask uint8
	for {
		key, end, ok := s.member()
		if !ok {
			return false
		}
		if end {
			return true
		}
		switch string(key) {
		case "amount":
			raw, ok := s.number()
			if !ok || !seen(&mask, 1) {
				return false
			}
			v.Amount = json.Number(raw)
		case "description":
			raw, ok := s.str()
			if !ok || !seen(&mask, 2) {
				return false
			}
			v.Description = string(raw)
		case "timestamp":
			raw, ok := s.quoted()
			if !ok || !seen(&mask, 4) {
				return false
			}
			var ts time.Time
			if ts.UnmarshalJSON(raw) != nil {
				return false
			}
			v.Timestamp = &ts
		default:
			return false
		}
	}
}
