package domain

import (
	"bytes"
	"encoding/json"
	"math/big"
	"testing"
	"time"
)

// fastSeeds are inputs for the differential test and the fuzz corpus: the
// plain form, and forms the fast path must leave to encoding/json.
var fastSeeds = []struct{ typ, data string }{
	{TypeAccountOpened, `{"account_id":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","owner_id":"alice","currency":"USD","opened_at":"2020-01-02T03:04:05.123456789Z"}`},
	{TypeAccountOpened, `{"account_id":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","owner_id":"名前 \"quoted\" \u003ctag\u003e","currency":"JPY","opened_at":"2020-01-02T03:04:05+09:00"}`},
	{TypeAccountOpened, ` { "account_id" : "{6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10}" , "owner_id":"名前","currency":"USD","opened_at":"2020-01-02T03:04:05Z" } `},
	{TypeAccountOpened, `{"Account_ID":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","owner_id":"a","currency":"USD","opened_at":"2020-01-02T03:04:05Z"}`},
	{TypeAccountOpened, `{"account_id":"not-a-uuid","owner_id":"alice","currency":"USD","opened_at":"2020-01-02T03:04:05Z"}`},
	{TypeAccountOpened, `{"account_id":null,"owner_id":"alice","currency":"USD","opened_at":"2020-01-02T03:04:05Z"}`},
	{TypeAccountOpened, `{"owner_id":"a","owner_id":"b"}`},
	{TypeAccountOpened, `{"accountId":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","ownerId":"alice","openedAt":"2020-01-02T03:04:05Z"}`},
	{TypeMoneyDeposited, `{"amount_minor":12550,"currency":"USD","description":"salary"}`},
	{TypeMoneyDeposited, `{"description":"x","currency":"USD","amount_minor":-0}`},
	{TypeMoneyDeposited, `{"amount_minor":1000000000000000,"currency":"KWD","description":""}`},
	{TypeMoneyDeposited, `{"amount_minor":999999999999999999,"currency":"KWD","description":""}`},
	{TypeMoneyDeposited, `{"amount_minor":9223372036854775808,"currency":"USD","description":""}`},
	{TypeMoneyDeposited, `{"amount_minor":125.5,"currency":"USD","description":""}`},
	{TypeMoneyDeposited, `{"amount_minor":1e3,"currency":"USD","description":""}`},
	{TypeMoneyDeposited, `{"amount_minor":01,"currency":"USD","description":""}`},
	{TypeMoneyDeposited, `{"amount_minor":"12550","currency":"USD","description":""}`},
	{TypeMoneyDeposited, `{"amount_minor":1,"currency":"USD","description":"","extra":1}`},
	{TypeMoneyDeposited, `{"amount_minor":1,"currency":"USD","description":"a\u00e9\n"}`},
	{TypeMoneyDeposited, "{\"amount_minor\":1,\"currency\":\"USD\",\"description\":\"\xff\"}"},
	{TypeMoneyDeposited, "{\"amount_minor\":1,\"currency\":\"USD\",\"description\":\"\x01\"}"},
	{TypeMoneyDeposited, `{"amount_minor":1,}`},
	{TypeMoneyDeposited, `{"amount_minor":1 "currency":"USD"}`},
	{TypeMoneyDeposited, `{}`},
	{TypeMoneyDeposited, `{} {}`},
	{TypeMoneyDeposited, `{"amount_minor":1} x`},
	{TypeMoneyWithdrawn, `{"amount_minor":1,"currency":"EUR","description":"café"}`},
	{TypeMoneyWithdrawn, `{"amount_minor":-5,"currency":"EUR","description":null}`},
	{TypeAccountClosed, `{"reason":"done","closed_at":"2021-12-31T23:59:59Z"}`},
	{TypeAccountClosed, `{"reason":"","closed_at":"0001-01-01T00:00:00Z"}`},
	{TypeAccountClosed, `{"reason":"","closed_at":"yesterday"}`},
	{TypeAccountClosed, `{"reason":"","closed_at":"2021-12-31 23:59:59Z"}`},
	{TypeAccountClosed, `{"reason":`},
	{TypeAccountClosed, `[]`},
	{TypeAccountClosed, ``},
}

// strictDecode runs encoding/json alone, as DecodeEvent did before the fast path.
func strictDecode(typ string, data []byte) (Event, error) {
	switch typ {
	case TypeAccountOpened:
		var v AccountOpened
		err := decodeStrict(data, &v)
		return v, err
	case TypeMoneyDeposited:
		var v MoneyDeposited
		err := decodeStrict(data, &v)
		return v, err
	case TypeMoneyWithdrawn:
		var v MoneyWithdrawn
		err := decodeStrict(data, &v)
		return v, err
	default:
		var v AccountClosed
		err := decodeStrict(data, &v)
		return v, err
	}
}

// fastOnly runs the fast path alone; ok is false where it leaves the input to encoding/json.
func fastOnly(typ string, data []byte) (Event, bool) {
	switch typ {
	case TypeAccountOpened:
		var v AccountOpened
		ok := fastAccountOpened(data, &v)
		return v, ok
	case TypeMoneyDeposited:
		var v MoneyDeposited
		ok := fastMoneyMoved(data, &v.AmountMinor, &v.Currency, &v.Description)
		return v, ok
	case TypeMoneyWithdrawn:
		var v MoneyWithdrawn
		ok := fastMoneyMoved(data, &v.AmountMinor, &v.Currency, &v.Description)
		return v, ok
	default:
		var v AccountClosed
		ok := fastAccountClosed(data, &v)
		return v, ok
	}
}

// checkFastAgreesWithStrict fails when the fast path takes an input that
// encoding/json rejects, or decodes it to anything else.
func checkFastAgreesWithStrict(t *testing.T, typ string, data []byte) {
	t.Helper()
	fast, ok := fastOnly(typ, data)
	if !ok {
		return
	}
	strict, err := strictDecode(typ, data)
	if err != nil {
		t.Fatalf("%s %q: fast path took input encoding/json rejects: %v", typ, data, err)
	}
	fj, _ := json.Marshal(fast)
	sj, _ := json.Marshal(strict)
	if !bytes.Equal(fj, sj) {
		t.Fatalf("%s %q: fast path decoded %s, encoding/json %s", typ, data, fj, sj)
	}
	if fast != strict && typ != TypeAccountOpened && typ != TypeAccountClosed {
		t.Fatalf("%s %q: fast path decoded %#v, encoding/json %#v", typ, data, fast, strict)
	}
}

func TestFastDecodeAgreesWithStrict(t *testing.T) {
	t.Parallel()
	took := 0
	for _, s := range fastSeeds {
		checkFastAgreesWithStrict(t, s.typ, []byte(s.data))
		if _, ok := fastOnly(s.typ, []byte(s.data)); ok {
			took++
		}
	}
	// The plain forms EncodeEvent writes must take the fast path.
	if took < 8 {
		t.Errorf("fast path took %d of the seeds, want at least 8", took)
	}
	for _, e := range []Event{
		AccountOpened{OwnerID: "x", Currency: "USD"},
		MoneyDeposited{AmountMinor: MaxMinor, Currency: "USD", Description: "café"},
		MoneyWithdrawn{AmountMinor: 1, Currency: "USD"},
		AccountClosed{Reason: "r"},
	} {
		typ, _, data, err := EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := fastOnly(typ, data); !ok {
			t.Errorf("fast path left %s to encoding/json", data)
		}
	}
}

func FuzzFastDecode(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add(s.typ, s.data)
	}
	f.Fuzz(func(t *testing.T, typ, data string) {
		switch typ {
		case TypeAccountOpened, TypeMoneyDeposited, TypeMoneyWithdrawn, TypeAccountClosed:
		default:
			typ = TypeMoneyDeposited
		}
		checkFastAgreesWithStrict(t, typ, []byte(data))
	})
}

func BenchmarkDecodeEvent(b *testing.B) {
	uc := UpcastContext{DefaultCurrency: MustCurrency("USD")}
	cases := []struct{ name, typ, data string }{
		{"opened", TypeAccountOpened, fastSeeds[0].data},
		{"deposited", TypeMoneyDeposited, fastSeeds[8].data},
		{"closed", TypeAccountClosed, fastSeeds[28].data},
	}
	for _, c := range cases {
		data := []byte(c.data)
		b.Run(c.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeEvent(c.typ, CurrentSchemaVersion, data, uc); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := strictDecode(c.typ, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUpcastMoneyMovedV1(b *testing.B) {
	uc := UpcastContext{DefaultCurrency: MustCurrency("USD")}
	data := []byte(`{"amount":1.25,"description":"legacy","timestamp":"2019-01-01T00:00:00Z"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEvent(TypeMoneyDeposited, 1, data, uc); err != nil {
			b.Fatal(err)
		}
	}
}

var v1MoneySeeds = []string{
	`{"amount":1.25,"description":"legacy","timestamp":"2019-01-01T00:00:00Z"}`,
	`{"amount":125.5,"description":"x","timestamp":"2020-01-02T03:04:05Z"}`,
	`{"amount":-0.5e-3,"description":""}`,
	`{"amount":1E+2}`,
	`{"amount":0}`,
	`{"amount":"1.5","description":"quoted"}`,
	`{"amount":01}`,
	`{"amount":1.}`,
	`{"amount":.5}`,
	`{"amount":1,"timestamp":null}`,
	`{"amount":1,"timestamp":"bad"}`,
	`{"amount":1,"Amount":2}`,
	`{"amount":1,"amount":2}`,
	`{"amount":1,"extra":2}`,
	`{"amount":1} junk`,
}

func TestFastMoneyMovedV1AgreesWithDecodeV1(t *testing.T) {
	t.Parallel()
	for _, s := range v1MoneySeeds {
		checkFastV1(t, []byte(s))
	}
	if !fastMoneyMovedV1([]byte(v1MoneySeeds[0]), &moneyMovedV1{}) {
		t.Errorf("fast path left %s to encoding/json", v1MoneySeeds[0])
	}
}

func checkFastV1(t *testing.T, data []byte) {
	t.Helper()
	var fast, strict moneyMovedV1
	if !fastMoneyMovedV1(data, &fast) {
		return
	}
	if err := decodeV1(data, &strict); err != nil {
		t.Fatalf("%q: fast path took input encoding/json rejects: %v", data, err)
	}
	fj, _ := json.Marshal(fast)
	sj, _ := json.Marshal(strict)
	if !bytes.Equal(fj, sj) {
		t.Fatalf("%q: fast path decoded %s, encoding/json %s", data, fj, sj)
	}
}

func FuzzFastMoneyMovedV1(f *testing.F) {
	for _, s := range v1MoneySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) { checkFastV1(t, []byte(data)) })
}

// majorToMinorSlow is MajorToMinor without its fast path.
func majorToMinorSlow(number string, c Currency) (int64, error) {
	if !jsonNumber.MatchString(number) {
		return 0, ErrInvalid
	}
	r, ok := new(big.Rat).SetString(number)
	if !ok {
		return 0, ErrInvalid
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(c.digits)), nil)))
	if !r.IsInt() || r.Num().Sign() < 0 || !r.Num().IsInt64() || r.Num().Int64() > MaxMinor {
		return 0, ErrInvalid
	}
	return r.Num().Int64(), nil
}

func checkPlainMajorToMinor(t *testing.T, number string) {
	t.Helper()
	for _, code := range []string{"USD", "JPY", "KWD"} {
		c := MustCurrency(code)
		n, ok := plainMajorToMinor(number, c)
		if !ok {
			continue
		}
		want, err := majorToMinorSlow(number, c)
		if err != nil || n != want {
			t.Fatalf("plainMajorToMinor(%q, %s) = %d; exact conversion gives %d, %v", number, code, n, want, err)
		}
	}
}

var majorSeeds = []string{"0", "1", "1.25", "125.5", "0.001", "10000000000000", "10000000000000.00", "1000000000000", "999999999999999999",
	"1000000000000000", "1000000000000.001", "01", "1.", ".5", "-1", "-0", "1e2", "1.250", "+5", "1_000", "0x10", ""}

func TestPlainMajorToMinor(t *testing.T) {
	t.Parallel()
	for _, s := range majorSeeds {
		checkPlainMajorToMinor(t, s)
	}
	if n, ok := plainMajorToMinor("1.25", MustCurrency("USD")); !ok || n != 125 {
		t.Errorf("plainMajorToMinor(1.25, USD) = %d, %v; want 125, true", n, ok)
	}
}

func FuzzPlainMajorToMinor(f *testing.F) {
	for _, s := range majorSeeds {
		f.Add(s)
	}
	f.Fuzz(checkPlainMajorToMinor)
}

// TestV2DocumentsMatchMaps pins that the v1 upcasters write the bytes the
// map[string]any they used to marshal gave.
func TestV2DocumentsMatchMaps(t *testing.T) {
	t.Parallel()
	at := time.Date(2020, 1, 2, 3, 4, 5, 500, time.FixedZone("", 3600))
	pairs := []struct{ doc, m any }{
		{accountOpenedV2{AccountID: "a<&>", OwnerID: "名前 \"q\"", Currency: "USD", OpenedAt: at},
			map[string]any{"account_id": "a<&>", "owner_id": "名前 \"q\"", "currency": "USD", "opened_at": at}},
		{moneyMovedV2{AmountMinor: MaxMinor, Currency: "KWD", Description: "\u2028<x>"},
			map[string]any{"amount_minor": MaxMinor, "currency": "KWD", "description": "\u2028<x>"}},
		{accountClosedV2{Reason: "done\n", ClosedAt: at}, map[string]any{"reason": "done\n", "closed_at": at}},
	}
	for _, p := range pairs {
		got, err1 := json.Marshal(p.doc)
		want, err2 := json.Marshal(p.m)
		if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Errorf("json.Marshal(%#v) = %s, %v; the map gave %s, %v", p.doc, got, err1, want, err2)
		}
	}
}
