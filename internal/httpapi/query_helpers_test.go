package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/httpapi"
	"github.com/evbank/bank/internal/projection"
)

// qapi is the test API with what the query tests need: commands to write
// events and the real projector code to fold them into the read tables.
type qapi struct{ *testAPI }

func newQueryAPI(t *testing.T, opts ...func(*httpapi.Deps)) qapi {
	t.Helper()
	return qapi{newTestAPI(t, opts...)}
}

// withMinVersionWait sets MIN_VERSION_WAIT.
func withMinVersionWait(d time.Duration) func(*httpapi.Deps) {
	return func(deps *httpapi.Deps) { deps.MinVersionWait = d }
}

// catchUp applies every event committed so far to the read tables with the
// projector's Runner, as cmd/projector does.
func (a qapi) catchUp(ctx context.Context) error {
	r, err := projection.NewRunner(a.events.Tailer(), a.read, projection.Options{Log: zerolog.Nop()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return r.CatchUp(ctx)
}

// project is catchUp for the test goroutine.
func (a qapi) project() {
	a.t.Helper()
	if err := a.catchUp(context.Background()); err != nil {
		a.t.Fatalf("projector catch-up: %v", err)
	}
}

// openAccount opens an account and returns its id.
func (a qapi) openAccount(owner, currency, initial string) string {
	a.t.Helper()
	body := map[string]any{"owner_id": owner}
	if currency != "" {
		body["currency"] = currency
	}
	if initial != "" {
		body["initial_deposit"] = initial
	}
	resp := a.do(http.MethodPost, "/accounts", body)
	if resp.StatusCode != http.StatusCreated {
		a.t.Fatalf("open account: %d %s", resp.StatusCode, resp.Body)
	}
	return resp.JSON(a.t)["id"].(string)
}

// command posts a deposit, withdraw or close and returns the new version.
func (a qapi) command(id, action string, body map[string]any) int {
	a.t.Helper()
	var payload any // a nil map would be sent as JSON null
	if body != nil {
		payload = body
	}
	resp := a.do(http.MethodPost, "/accounts/"+id+"/"+action, payload)
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("%s %s: %d %s", action, id, resp.StatusCode, resp.Body)
	}
	return int(resp.JSON(a.t)["version"].(float64))
}

func (a qapi) deposit(id, amount, description string) int {
	a.t.Helper()
	return a.command(id, "deposit", map[string]any{"amount": amount, "description": description})
}

func (a qapi) withdraw(id, amount, description string) int {
	a.t.Helper()
	return a.command(id, "withdraw", map[string]any{"amount": amount, "description": description})
}

// get sends a GET and wants 200 with a JSON body, decoded into out.
func (a qapi) get(path string, out any) response {
	a.t.Helper()
	resp := a.do(http.MethodGet, path, nil)
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		a.t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	if out != nil {
		dec := json.NewDecoder(strings.NewReader(string(resp.Body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(out); err != nil {
			a.t.Fatalf("GET %s: %v\n%s", path, err, resp.Body)
		}
	}
	return resp
}

// wantProblem checks a problem response: status, code and, when field is not
// empty, that the field is named in errors.
func wantProblem(t *testing.T, resp response, status int, code, field string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.RequestURI(), resp.StatusCode, status, resp.Body)
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", resp.Request.URL.RequestURI(), ct)
	}
	type fieldError struct {
		Field string `json:"field"`
	}
	var p struct {
		Status int          `json:"status"`
		Code   string       `json:"code"`
		Errors []fieldError `json:"errors"`
	}
	if err := json.Unmarshal(resp.Body, &p); err != nil {
		t.Fatalf("problem body: %v\n%s", err, resp.Body)
	}
	if p.Code != code || p.Status != status {
		t.Errorf("%s: problem %d %q, want %d %q: %s", resp.Request.URL.RequestURI(), p.Status, p.Code, status, code, resp.Body)
	}
	if field != "" && !slices.Contains(p.Errors, fieldError{Field: field}) {
		t.Errorf("%s: errors %+v do not name %q", resp.Request.URL.RequestURI(), p.Errors, field)
	}
}

// utcToday is today's date in UTC, as the daily summaries count days.
func utcToday() time.Time {
	y, m, d := time.Now().UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// jsonKeys returns the sorted keys of a JSON object.
func jsonKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// rfc3339UTC reports whether v is an RFC 3339 timestamp in UTC ("Z").
func rfc3339UTC(v any) bool {
	s, ok := v.(string)
	if !ok || !strings.HasSuffix(s, "Z") {
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// encodeTestCursor makes a cursor the way the API does (base64url of a
// position), to forge one the endpoint must refuse.
func encodeTestCursor(position string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(position))
}
