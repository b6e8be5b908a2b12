package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzFields are the fields readBody is told about in FuzzReadBody: every
// command's, so that the fuzzer reaches the checks after the field names.
var fuzzFields = []string{"owner_id", "currency", "initial_deposit", "id", "amount", "description", "reason"}

// FuzzReadBody holds the body reader to DESIGN §2's strictness rules. It checks
// both ways against oracles that share no code with readBody:
//   - whatever readBody accepts is valid UTF-8 JSON with an allowed
//     Content-Type, no key twice in any object, no escape that decoded to
//     U+FFFD by substitution, and a canonical form that decodes to the same
//     value and re-encodes to itself;
//   - whatever JSON object passes those oracles is accepted.
//
// Inputs it finds are kept in testdata/fuzz/FuzzReadBody.
func FuzzReadBody(f *testing.F) {
	for _, seed := range []struct{ body, ct string }{
		{`{"amount":"1.00"}`, "application/json"},
		{`{"amount":"1.00","description":"caf\u00e9 \ud83d\udcb8"}`, "application/json; charset=utf-8"},
		{`{"amount":"1.00","amount":"50.00"}`, "application/json"},
		{`{"amount":"1.00","\u0061mount":"50.00"}`, "application/json"},
		{`{"description":{"a":[{"b":1,"b":2}]}}`, "application/json"},
		{`{"description":"\ud800"}`, "application/json"},
		{`{"description":"\ud800\u0041"}`, "application/json"},
		{`{"description":"\\ud800"}`, "application/json"},
		{"{\"description\":\"\xff\"}", "application/json"},
		{`{"owner_id":"x","id":"9b2f6c1e-4a43-4c59-9a8e-2f1f0c3b7d10"}`, "Application/JSON;Charset=UTF-8"},
		{`{"reason":"x"}`, "application/problem+json"},
		{`{"reason":"x"}`, "application/json; charset=latin1"},
		{`{"reason":"x"} {}`, "application/json"},
		{``, ""},
		{`  `, "text/plain"},
	} {
		f.Add([]byte(seed.body), seed.ct)
	}
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		r := httptest.NewRequest(http.MethodPost, "/accounts", bytes.NewReader(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		b, err := readBody(r, true, fuzzFields...)
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || (p.Status != http.StatusBadRequest && p.Status != http.StatusRequestEntityTooLarge) {
				t.Fatalf("readBody error %v is not a 400 or 413 problem", err)
			}
			if p.Status == http.StatusBadRequest && wellFormed(body, ct) {
				t.Fatalf("readBody refused a strict JSON object: %v\nbody %q\nContent-Type %q", err, body, ct)
			}
			return
		}
		if len(bytes.TrimSpace(body)) == 0 {
			if string(b.canonical) != "{}" {
				t.Fatalf("empty body gave canonical %q", b.canonical)
			}
			return
		}
		if !contentTypeOracle(ct) {
			t.Fatalf("accepted Content-Type %q", ct)
		}
		if !utf8.Valid(body) || !json.Valid(body) {
			t.Fatalf("accepted a body that is not UTF-8 JSON: %q", body)
		}
		orig := decodeNumbers(t, body)
		colons, fffd := literalCounts(body)
		if keys := countKeys(orig); keys != colons {
			t.Fatalf("accepted a body with a repeated key (%d keys written, %d kept): %q", colons, keys, body)
		}
		if n := countFFFD(orig); n != fffd {
			t.Fatalf("accepted a body whose decoding substituted U+FFFD (%d in the decoded value, %d written): %q", n, fffd, body)
		}
		// The canonical form is the same value and its own canonical form.
		if again := decodeNumbers(t, b.canonical); !reflect.DeepEqual(again, orig) {
			t.Fatalf("canonical %q decodes to %v, the body to %v", b.canonical, again, orig)
		}
		r2 := httptest.NewRequest(http.MethodPost, "/accounts", bytes.NewReader(b.canonical))
		r2.Header.Set("Content-Type", "application/json")
		b2, err := readBody(r2, true, fuzzFields...)
		if err != nil {
			t.Fatalf("canonical %q refused: %v", b.canonical, err)
		}
		if !bytes.Equal(b2.canonical, b.canonical) {
			t.Fatalf("canonical form is not stable: %q then %q", b.canonical, b2.canonical)
		}
		for name, raw := range b.fields {
			if want := orig.(map[string]any)[name]; !reflect.DeepEqual(decodeNumbers(t, raw), want) {
				t.Fatalf("field %q is %s, the body has %v", name, raw, want)
			}
		}
	})
}

// wellFormed is the acceptance oracle: an allowed Content-Type and a UTF-8
// JSON object of known fields, with no key twice and no U+FFFD substituted.
func wellFormed(body []byte, ct string) bool {
	if len(body) > maxBodyBytes || !contentTypeOracle(ct) || !utf8.Valid(body) || !json.Valid(body) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return false // nesting deeper than encoding/json takes
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for k := range obj {
		if !containsString(fuzzFields, k) {
			return false
		}
	}
	colons, fffd := literalCounts(body)
	return countKeys(v) == colons && countFFFD(v) == fffd
}

// contentTypeOracle: application/json in any case, with no parameter or only
// charset=utf-8 in any case.
func contentTypeOracle(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !strings.EqualFold(mt, "application/json") || len(params) > 1 {
		return false
	}
	cs, ok := params["charset"]
	return len(params) == 0 || (ok && strings.EqualFold(cs, "utf-8"))
}

func decodeNumbers(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
	return v
}

// literalCounts scans valid JSON text: the colons outside strings (one per
// key written) and the U+FFFD written in strings, literally or as \ufffd.
func literalCounts(data []byte) (colons, fffd int) {
	s := string(data)
	in := false
	for i := 0; i < len(s); i++ {
		switch {
		case !in && s[i] == ':':
			colons++
		case !in && s[i] == '"':
			in = true
		case in && s[i] == '"':
			in = false
		case in && s[i] == '\\':
			if s[i+1] == 'u' && strings.EqualFold(s[i+2:i+6], "fffd") {
				fffd++
			}
			i++
		case in && strings.HasPrefix(s[i:], "\uFFFD"):
			fffd++
		}
	}
	return colons, fffd
}

func countKeys(v any) int {
	n := 0
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			n += 1 + countKeys(e)
		}
	case []any:
		for _, e := range v {
			n += countKeys(e)
		}
	}
	return n
}

func countFFFD(v any) int {
	n := 0
	switch v := v.(type) {
	case string:
		n = strings.Count(v, "\uFFFD")
	case map[string]any:
		for k, e := range v {
			n += strings.Count(k, "\uFFFD") + countFFFD(e)
		}
	case []any:
		for _, e := range v {
			n += countFFFD(e)
		}
	}
	return n
}
