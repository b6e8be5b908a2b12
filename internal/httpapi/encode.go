package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/query"
)

// The two answers on the hot path, a command's account state and GET
// /accounts/{id}, are small fixed shapes: they are appended by hand rather
// than through encoding/json's reflection, byte for byte what json.Marshal
// writes (FuzzAccountEncoding holds them to it). Any string encoding/json
// would escape, and any time it would refuse, sends the value to
// json.Marshal itself, so an unusual owner_id costs time, never bytes.

// marshalAccountState is json.Marshal(s).
func marshalAccountState(s AccountState) []byte {
	if b, ok := appendAccountState(make([]byte, 0, 160), s); ok {
		return b
	}
	b, _ := json.Marshal(s) // plain struct, always marshals
	return b
}

func appendAccountState(b []byte, s AccountState) ([]byte, bool) {
	b = append(b, `{"id":"`...)
	b = appendUUID(b, s.ID)
	b = append(b, `","owner_id":`...)
	b, ok1 := appendPlainString(b, s.OwnerID)
	b = append(b, `,"currency":`...)
	b, ok2 := appendPlainString(b, s.Currency)
	b = append(b, `,"balance":`...)
	b, ok3 := appendPlainString(b, s.Balance)
	b = append(b, `,"status":`...)
	b, ok4 := appendPlainString(b, s.Status)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(s.Version), 10)
	b = append(b, '}')
	return b, ok1 && ok2 && ok3 && ok4
}

// marshalAccount is json.Marshal(a), or an error where it has one.
func marshalAccount(a query.Account) ([]byte, error) {
	if b, ok := appendAccount(make([]byte, 0, 320), a); ok {
		return b, nil
	}
	return json.Marshal(a)
}

func appendAccount(b []byte, a query.Account) ([]byte, bool) {
	b, ok := appendAccountState(b, AccountState{
		ID: a.ID, OwnerID: a.OwnerID, Currency: a.Currency, Balance: a.Balance, Status: a.Status, Version: a.Version,
	})
	if !ok {
		return nil, false
	}
	b = b[:len(b)-1] // reopen the object
	b = append(b, `,"opened_at":`...)
	b, ok1 := appendTime(b, a.OpenedAt)
	b = append(b, `,"updated_at":`...)
	b, ok2 := appendTime(b, a.UpdatedAt)
	b = append(b, `,"closed_at":`...)
	ok3 := true
	if a.ClosedAt == nil {
		b = append(b, "null"...)
	} else {
		b, ok3 = appendTime(b, *a.ClosedAt)
	}
	b = append(b, '}')
	return b, ok1 && ok2 && ok3
}

// appendUUID writes id as uuid.UUID.String does (and so its MarshalText):
// lower-case hex, 8-4-4-4-12.
func appendUUID(b []byte, id uuid.UUID) []byte {
	const digits = "0123456789abcdef"
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, digits[c>>4], digits[c&0x0f])
	}
	return b
}

// appendTime writes t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds); ok is false where MarshalJSON fails (a year past 9999).
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return nil, false
	}
	return append(b, '"'), true
}

// appendPlainString quotes s when encoding/json writes it unchanged:
// printable ASCII but for the quote, the backslash and <, >, & (escaped for
// HTML). ok is false for anything else.
func appendPlainString(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}

// writeJSONBytes answers with body, already JSON, as writeJSON does.
func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
