package httpapi

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

const (
	defaultLimit = 50
	maxLimit     = 200
)

// pageLimit reads ?limit=: default 50, 1-200, anything else is invalid.
func pageLimit(r *http.Request) (int, error) {
	raw, present := r.URL.Query()["limit"]
	if !present {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(raw[0])
	if err != nil || n < 1 || n > maxLimit || len(raw) > 1 {
		return 0, invalid("limit", "must be an integer from 1 to 200")
	}
	return n, nil
}

// Cursors are opaque to clients: base64url of a short internal position, so
// that the position's form can change without breaking a contract.
func encodeCursor(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeCursor(r *http.Request) (string, error) {
	raw := r.URL.Query().Get("cursor")
	if raw == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) == 0 {
		return "", invalid("cursor", "is not a cursor this API returned")
	}
	return string(b), nil
}

// versionPage reads ?limit= and a version cursor ("v:<version>", as issued for
// the audit trail and the transactions of one account). version is 0 without a
// cursor.
func versionPage(r *http.Request) (limit, version int, err error) {
	if limit, err = pageLimit(r); err != nil {
		return 0, 0, err
	}
	cursor, err := decodeCursor(r)
	if err != nil || cursor == "" {
		return limit, 0, err
	}
	v, ok := strings.CutPrefix(cursor, "v:")
	n, valid := positiveInt(v)
	if !ok || !valid {
		return 0, 0, invalid("cursor", "is not a cursor this API returned")
	}
	return limit, n, nil
}

func versionCursor(version int) *string {
	c := encodeCursor("v:" + strconv.Itoa(version))
	return &c
}
