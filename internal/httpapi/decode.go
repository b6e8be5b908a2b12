package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/evbank/bank/internal/domain"
)

// maxBodyBytes is the contract's body limit (1 MiB).
const maxBodyBytes = 1 << 20

// requestBody is a command's JSON object, checked for shape but not yet for
// field types: fields are taken one by one so that a wrong type is reported
// against its field (validation_failed), while broken JSON is malformed_request.
type requestBody struct {
	fields map[string]json.RawMessage
	verr   domain.ValidationError
	// canonical is the body re-encoded with sorted keys: equal JSON, equal bytes,
	// which is what an idempotent retry is compared on.
	canonical []byte
}

// readBody reads and checks a command body. emptyOK allows no body at all
// (close). Allowed names the fields the endpoint knows; any other is malformed.
func readBody(r *http.Request, emptyOK bool, allowed ...string) (*requestBody, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, newProblem(http.StatusRequestEntityTooLarge, "body_too_large", "the body is over 1 MiB")
		}
		return nil, malformed("the body could not be read")
	}
	if len(raw) > maxBodyBytes {
		return nil, newProblem(http.StatusRequestEntityTooLarge, "body_too_large", "the body is over 1 MiB")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if emptyOK {
			return &requestBody{fields: map[string]json.RawMessage{}, canonical: []byte("{}")}, nil
		}
		return nil, malformed("the body must be a JSON object")
	}
	if ct := r.Header.Get("Content-Type"); !isJSONContentType(ct) {
		return nil, malformed(fmt.Sprintf("Content-Type must be application/json, not %q", ct))
	}
	var value any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&value); err != nil {
		return nil, malformed("the body is not valid JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, malformed("the body has data after the JSON object")
	}
	obj, ok := value.(map[string]any)
	if !ok {
		return nil, malformed("the body must be a JSON object")
	}
	b := &requestBody{fields: make(map[string]json.RawMessage, len(obj))}
	for k, v := range obj {
		if !containsString(allowed, k) {
			return nil, malformed(fmt.Sprintf("unknown field %q", k))
		}
		enc, _ := json.Marshal(v) // values decoded from JSON always re-encode
		b.fields[k] = enc
	}
	b.canonical, _ = json.Marshal(obj) // map keys marshal sorted
	return b, nil
}

func isJSONContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// String returns field name as a string. Absent and null give "" and ok=false;
// a required field that is absent is reported as missing.
func (b *requestBody) String(name string, required bool) string {
	raw, present := b.fields[name]
	if !present || string(raw) == "null" {
		if required {
			b.verr.Add(name, fmt.Errorf("%w: %s is required", domain.ErrInvalid, name))
		}
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		b.verr.Add(name, fmt.Errorf("%w: %s must be a string", domain.ErrInvalid, name))
		return ""
	}
	return s
}

// Err returns the field errors collected so far.
func (b *requestBody) Err() error { return b.verr.Err() }

// fingerprint identifies the request for idempotent retries: same method,
// canonical path and equal JSON body give the same fingerprint.
func (b *requestBody) fingerprint(method, path string) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", method, path)
	h.Write(b.canonical)
	return h.Sum(nil)
}
