package httpapi

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzReadFlatBody holds readBody's fast path to the general one: whatever
// readFlatBody accepts, parseBody accepts too, with the same fields (byte for
// byte) and the same canonical form, so that fingerprints and field errors
// cannot tell which path read a body.
func FuzzReadFlatBody(f *testing.F) {
	for _, seed := range []string{
		`{"amount":"1.00"}`,
		`{"amount":"1.00","description":"bench"}`,
		` { "description" : "x y" ,"amount":"2.50" } ` + "\n",
		"{\t\"reason\":\"\"\r\n}",
		`{}`,
		`{"amount":"1.00","amount":"2.00"}`,
		`{"amount":"1.00",}`,
		`{"amount":1}`,
		`{"amount":"<&>"}`,
		`{"amount":"caf\u00e9"}`,
		`{"nope":"1"}`,
		`{"amount":"1"} x`,
		`{"owner_id":"b","currency":"USD","initial_deposit":"1","id":"9b2f6c1e-4a43-4c59-9a8e-2f1f0c3b7d10"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, ok := readFlatBody(raw, fuzzFields)
		if !ok {
			return
		}
		slow, err := parseBody(bytes.Clone(raw), fuzzFields)
		if err != nil {
			t.Fatalf("fast path accepted %q, general path refused it: %v", raw, err)
		}
		if !bytes.Equal(fast.canonical, slow.canonical) {
			t.Fatalf("%q: canonical %q, general path %q", raw, fast.canonical, slow.canonical)
		}
		if len(fast.fields) != len(slow.fields) {
			t.Fatalf("%q: fields %q, general path %q", raw, fast.fields, slow.fields)
		}
		for k, v := range slow.fields {
			if !bytes.Equal(fast.fields[k], v) {
				t.Fatalf("%q: field %s is %q, general path %q", raw, k, fast.fields[k], v)
			}
		}
		for _, name := range fuzzFields {
			if a, b := fast.String(name, true), slow.String(name, true); a != b {
				t.Fatalf("%q: String(%s) = %q, general path %q", raw, name, a, b)
			}
		}
		if !reflect.DeepEqual(fast.verr, slow.verr) {
			t.Fatalf("%q: field errors %v, general path %v", raw, fast.verr, slow.verr)
		}
	})
}
