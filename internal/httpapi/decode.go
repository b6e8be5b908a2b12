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
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

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
		return nil, malformed(fmt.Sprintf("Content-Type must be application/json (charset=utf-8 at most), not %q", truncate(ct, 100)))
	}
	if b, ok := readFlatBody(raw, allowed); ok {
		return b, nil
	}
	return parseBody(raw, allowed)
}

// parseBody is readBody's general path for a non-empty JSON body: strict
// checks, then the fields one by one and the canonical form.
func parseBody(raw []byte, allowed []string) (*requestBody, error) {
	if err := checkStrict(raw); err != nil {
		return nil, err
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
			return nil, malformed(fmt.Sprintf("unknown field %q", truncate(k, 100)))
		}
		enc, _ := json.Marshal(v) // values decoded from JSON always re-encode
		b.fields[k] = enc
	}
	b.canonical, _ = json.Marshal(obj) // map keys marshal sorted
	return b, nil
}

// readFlatBody is readBody's fast path for the bodies clients send almost
// always: one object of known fields whose keys and values are strings of
// plain printable ASCII, such as {"amount":"1.00"}. It parses the body once
// instead of three times (strict check, decode, re-encode), and gives the
// same requestBody as the general path: for such strings the body's own
// bytes are what encoding/json would re-encode. It only ever accepts; ok is
// false for anything else (an escape, a non-ASCII byte, <, > or & that
// encoding/json escapes, a number, null, a nested value, an unknown or
// repeated key, a syntax error), which the general path then reads and, if
// need be, refuses in its own words.
func readFlatBody(raw []byte, allowed []string) (*requestBody, bool) {
	type field struct {
		key, val []byte // val with its quotes
		name     string // key as the allowed name: a map key without a copy
	}
	var buf [8]field
	fields := buf[:0]
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil, false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		i++
	} else {
		for {
			k, next, ok := plainString(raw, i)
			if !ok {
				return nil, false
			}
			key := raw[k+1 : next-1]
			known := slices.Index(allowed, string(key)) // compared, not copied
			if known < 0 {
				return nil, false
			}
			for _, f := range fields {
				if bytes.Equal(f.key, key) {
					return nil, false
				}
			}
			i = skipSpace(raw, next)
			if i >= len(raw) || raw[i] != ':' {
				return nil, false
			}
			v, next, ok := plainString(raw, skipSpace(raw, i+1))
			if !ok {
				return nil, false
			}
			fields = append(fields, field{key: key, val: raw[v:next], name: allowed[known]})
			i = skipSpace(raw, next)
			if i >= len(raw) {
				return nil, false
			}
			if raw[i] == '}' {
				i++
				break
			}
			if raw[i] != ',' {
				return nil, false
			}
			i = skipSpace(raw, i+1)
		}
	}
	if skipSpace(raw, i) != len(raw) {
		return nil, false
	}
	// encoding/json writes a map's keys sorted, which canonical must match.
	slices.SortFunc(fields, func(a, b field) int { return bytes.Compare(a.key, b.key) })
	n := 2
	for _, f := range fields {
		n += len(f.key) + len(f.val) + 4
	}
	canonical := make([]byte, 0, n)
	b := &requestBody{fields: make(map[string]json.RawMessage, len(fields))}
	canonical = append(canonical, '{')
	for j, f := range fields {
		if j > 0 {
			canonical = append(canonical, ',')
		}
		canonical = append(canonical, '"')
		canonical = append(canonical, f.key...)
		canonical = append(canonical, '"', ':')
		start := len(canonical)
		canonical = append(canonical, f.val...)
		// The value shares canonical's array, capped so that nothing
		// appended to it could overwrite what follows.
		b.fields[f.name] = canonical[start:len(canonical):len(canonical)]
	}
	canonical = append(canonical, '}')
	b.canonical = canonical
	return b, true
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a string literal at raw[i] made only of bytes that
// encoding/json decodes and encodes unchanged: printable ASCII but for the
// quote, the backslash and the HTML characters it escapes (<, >, &). It
// returns the index of the opening quote and the index just past the
// closing one.
func plainString(raw []byte, i int) (start, end int, ok bool) {
	if i >= len(raw) || raw[i] != '"' {
		return 0, 0, false
	}
	for j := i + 1; j < len(raw); j++ {
		switch c := raw[j]; {
		case c == '"':
			return i, j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\' || c == '<' || c == '>' || c == '&':
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// isJSONContentType accepts application/json with at most charset=utf-8: the
// body is read as UTF-8 JSON and nothing else, so a type or charset that says
// otherwise (problem+json, latin1) would make two readers disagree.
func isJSONContentType(ct string) bool {
	if ct == "application/json" {
		return true // what clients send, as ParseMediaType would find, without its map
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	for name, value := range params {
		if name != "charset" || !strings.EqualFold(value, "utf-8") {
			return false
		}
	}
	return true
}

// checkStrict refuses what encoding/json would quietly accept and change:
// invalid UTF-8 (it substitutes U+FFFD), an escaped lone surrogate (also
// U+FFFD) and a repeated object key (the last one wins), anywhere in the body.
// Each of those lets two JSON parsers read one body two ways. Syntax errors are
// left to the decoder, which reports them the same way.
func checkStrict(raw []byte) error {
	if !utf8.Valid(raw) {
		return malformed("the body is not valid UTF-8")
	}
	if err := checkSurrogates(raw); err != nil {
		return err
	}
	if err := checkDuplicateKeys(raw); err != nil && !errors.Is(err, errSyntax) {
		return err
	}
	return nil
}

// errSyntax marks a syntax error met by a check: the decoder that reads the
// body next reports it, with the words it has for each kind.
var errSyntax = errors.New("JSON syntax error")

// checkSurrogates walks the string literals of raw and refuses a \u escape of
// a surrogate that is not half of a high-low pair.
func checkSurrogates(raw []byte) error {
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 >= len(raw) {
				return nil // truncated: the decoder reports it
			}
			if raw[i+1] != 'u' {
				i++ // the escaped character, which may be a quote
				continue
			}
			r, ok := hex4(raw, i+2)
			if !ok {
				return nil // not a valid escape: the decoder reports it
			}
			i += 5
			switch {
			case utf16.IsSurrogate(r) && r >= 0xDC00:
				return malformed("the body has an unpaired UTF-16 surrogate escape")
			case utf16.IsSurrogate(r):
				low, ok := rune(0), false
				if i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					low, ok = hex4(raw, i+3)
				}
				if !ok || low < 0xDC00 || low > 0xDFFF {
					return malformed("the body has an unpaired UTF-16 surrogate escape")
				}
				i += 6
			}
		}
	}
	return nil
}

// hex4 reads the four hex digits of a \u escape starting at raw[at].
func hex4(raw []byte, at int) (rune, bool) {
	if at+4 > len(raw) {
		return 0, false
	}
	var r rune
	for _, c := range raw[at : at+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// checkDuplicateKeys walks raw token by token and refuses an object that names
// a key twice, at any depth. Keys are compared decoded, so "a" and "\u0061"
// are the same key, as they are to every JSON reader.
func checkDuplicateKeys(raw []byte) error {
	type frame struct {
		keys      map[string]struct{} // nil for an array
		expectKey bool
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", errSyntax, err)
		}
		top := len(stack) - 1
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, frame{keys: map[string]struct{}{}, expectKey: true})
			case '[':
				stack = append(stack, frame{})
			default:
				stack = stack[:top]
				if top > 0 && stack[top-1].keys != nil {
					stack[top-1].expectKey = true
				}
			}
			continue
		case string:
			if top >= 0 && stack[top].keys != nil && stack[top].expectKey {
				if _, dup := stack[top].keys[t]; dup {
					return malformed(fmt.Sprintf("the body names the key %q twice", truncate(t, 100)))
				}
				stack[top].keys[t] = struct{}{}
				stack[top].expectKey = false
				continue
			}
		}
		// A scalar value: the object it sits in expects a key next.
		if top >= 0 && stack[top].keys != nil {
			stack[top].expectKey = true
		}
	}
}

// truncate keeps client text quoted in a problem detail short.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
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
	// Every field holds encoding/json's own encoding of a decoded value, so
	// a quoted one without a backslash is a string that reads as its bytes:
	// no need to run the decoder on it.
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && bytes.IndexByte(raw[1:n-1], '\\') < 0 {
		return string(raw[1 : n-1])
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		b.verr.Add(name, fmt.Errorf("%w: %s must be a string", domain.ErrInvalid, name))
		return ""
	}
	return s
}

// Optional returns optional field name as a string, "" when absent or null. An
// empty string is refused: for an id or an amount it would otherwise read as
// "not sent", and a client that sent one meant something else.
func (b *requestBody) Optional(name string) string {
	raw, present := b.fields[name]
	if !present || string(raw) == "null" {
		return ""
	}
	s := b.String(name, false)
	if s == "" && string(raw) == `""` {
		b.verr.Add(name, fmt.Errorf("%w: %s must not be empty; leave it out instead", domain.ErrInvalid, name))
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
