package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/go-chi/chi/v5"

	"github.com/evbank/bank/internal/httpapi"
)

// specPath is openapi.yaml at the repository root, seen from this package.
const specPath = "../../openapi.yaml"

// problemStatus is DESIGN's error table plus the codes only the server's own
// failures produce: the status each problem code must come with.
var problemStatus = map[string]int{
	"malformed_request":      400,
	"validation_failed":      400,
	"unauthorized":           401,
	"forbidden":              403,
	"rate_limited":           429,
	"body_too_large":         413,
	"account_not_found":      404,
	"not_found":              404,
	"method_not_allowed":     405,
	"account_exists":         409,
	"concurrency_conflict":   409,
	"version_conflict":       412,
	"insufficient_funds":     422,
	"account_closed":         422,
	"balance_not_zero":       422,
	"idempotency_key_reused": 422,
	"balance_limit_exceeded": 422,
	"currency_mismatch":      422,
	"transfer_not_found":     404,
	"transfer_exists":        409,
	"destination_not_found":  422,
	"destination_closed":     422,
	"projection_lagging":     503,
	"timeout":                503,
	"unavailable":            503,
	"internal_error":         500,
}

type loadedSpec struct {
	doc    *openapi3.T
	router routers.Router
}

// spec loads and validates openapi.yaml once per test binary. The router
// matches on paths alone (the servers list names a deployment, not the test server).
var spec = sync.OnceValues(func() (*loadedSpec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(specPath)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", specPath, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("%s is not a valid OpenAPI document: %w", specPath, err)
	}
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", specPath, err)
	}
	return &loadedSpec{doc: doc, router: router}, nil
})

// validateResponse checks one finished exchange against openapi.yaml and the
// problem conventions. It is called by testAPI for every request, so every HTTP
// test checks the contract as a side effect; it reports with t.Errorf, which is
// safe from any goroutine.
func validateResponse(t testing.TB, req *http.Request, reqBody []byte, resp *http.Response, body []byte) {
	t.Helper()
	if err := checkExchange(req, reqBody, resp, body); err != nil {
		t.Errorf("%s %s → %d does not follow openapi.yaml: %v\nresponse body: %.2000s", req.Method, req.URL.RequestURI(), resp.StatusCode, err, body)
	}
}

func checkExchange(req *http.Request, reqBody []byte, resp *http.Response, body []byte) error {
	s, err := spec()
	if err != nil {
		return err
	}
	ctx := context.Background()
	var errs []error

	// Route as chi does: on the escaped path when it differs from the decoded
	// one, so that an encoded slash stays inside its segment.
	routed := req
	if req.URL.RawPath != "" {
		routed = req.Clone(ctx)
		routed.URL.Path = req.URL.RawPath
		routed.URL.RawPath = ""
	}
	route, pathParams, err := s.router.FindRoute(routed)
	var routeErr *routers.RouteError
	switch {
	case err == nil:
	case !errors.As(err, &routeErr):
		return fmt.Errorf("find route: %w", err)
	case len(specMethods(s, routed)) > 0:
		// The spec cannot attach a response to an operation it does not have:
		// hold the answer to the components' MethodNotAllowed response instead.
		if resp.StatusCode != http.StatusMethodNotAllowed {
			return fmt.Errorf("the spec has no %s for this path, yet the status is %d, not 405", req.Method, resp.StatusCode)
		}
		route = syntheticRoute(s.doc, req, http.StatusMethodNotAllowed, "MethodNotAllowed")
		if err := checkAllow(s, routed, resp); err != nil {
			errs = append(errs, err)
		}
	default:
		// Likewise for a path it does not have: PathNotFound.
		if resp.StatusCode != http.StatusNotFound {
			return fmt.Errorf("the path is not in the spec, yet the status is %d, not 404", resp.StatusCode)
		}
		route = syntheticRoute(s.doc, req, http.StatusNotFound, "PathNotFound")
	}

	reqInput := &openapi3filter.RequestValidationInput{
		Request: cloneRequest(req, reqBody), PathParams: pathParams, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	// Tests send bad requests on purpose: only a request the spec rejects but
	// the server accepts is a finding.
	if pathParams != nil {
		if rerr := openapi3filter.ValidateRequest(ctx, reqInput); rerr != nil && resp.StatusCode < 400 {
			errs = append(errs, fmt.Errorf("the spec rejects this request but the server accepted it: %w", rerr))
		}
	}

	// Every 4xx must be listed on the operation itself; only 5xx may fall to default.
	if resp.StatusCode < 500 && route.Operation.Responses.Status(resp.StatusCode) == nil {
		errs = append(errs, fmt.Errorf("status %d is not listed on operation %q", resp.StatusCode, route.Operation.OperationID))
	}

	if req.Method != http.MethodHead {
		respInput := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: reqInput, Status: resp.StatusCode, Header: resp.Header,
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		respInput.SetBodyBytes(body)
		if err := openapi3filter.ValidateResponse(ctx, respInput); err != nil {
			errs = append(errs, err)
		}
		if err := checkProblem(resp, body); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syntheticRoute stands for an operation the spec cannot have (an unknown path,
// another method): its only response is the named component response.
func syntheticRoute(doc *openapi3.T, req *http.Request, status int, component string) *routers.Route {
	ref := &openapi3.ResponseRef{Ref: "#/components/responses/" + component, Value: doc.Components.Responses[component].Value}
	return &routers.Route{
		Spec: doc, Path: req.URL.Path, PathItem: &openapi3.PathItem{}, Method: req.Method,
		Operation: &openapi3.Operation{
			OperationID: "(" + component + ")",
			Responses:   openapi3.NewResponses(openapi3.WithStatus(status, ref)),
		},
	}
}

// specMethods returns the methods the spec has for req's path.
func specMethods(s *loadedSpec, req *http.Request) []string {
	var methods []string
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		probe := req.Clone(context.Background())
		probe.Method = m
		if _, _, err := s.router.FindRoute(probe); err == nil {
			methods = append(methods, m)
		}
	}
	return methods
}

// checkAllow wants a 405's Allow header to list only methods the spec has for
// the path (the router may not serve all of them yet), never the request's own.
func checkAllow(s *loadedSpec, req *http.Request, resp *http.Response) error {
	allow := resp.Header.Get("Allow")
	if allow == "" {
		return errors.New("405 without Allow")
	}
	documented := specMethods(s, req)
	for _, m := range strings.Split(allow, ", ") {
		if m == req.Method {
			return fmt.Errorf("a 405 to %s lists %s in Allow", m, m)
		}
		if !slices.Contains(documented, m) {
			return fmt.Errorf("Allow lists %s, which the spec does not have for %s (it has %v)", m, req.URL.Path, documented)
		}
	}
	return nil
}

// checkProblem holds every problem+json response to the conventions the
// schema cannot state: its status field is the HTTP status, its code belongs to
// that status, and its type names the code.
func checkProblem(resp *http.Response, body []byte) error {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode >= 400 && mt != "application/problem+json" && !isReadyz(resp) {
		return fmt.Errorf("status %d with Content-Type %q, want application/problem+json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if mt != "application/problem+json" {
		return nil
	}
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
		Code   string `json:"code"`
		Title  string `json:"title"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("problem body: %w", err)
	}
	var errs []error
	if p.Status != resp.StatusCode {
		errs = append(errs, fmt.Errorf("problem status %d on a %d response", p.Status, resp.StatusCode))
	}
	if want, ok := problemStatus[p.Code]; !ok || want != resp.StatusCode {
		errs = append(errs, fmt.Errorf("problem code %q on a %d response (the table says %d)", p.Code, resp.StatusCode, want))
	}
	if p.Type != "urn:problem-type:bank:"+p.Code {
		errs = append(errs, fmt.Errorf("problem type %q does not name code %q", p.Type, p.Code))
	}
	if p.Title != http.StatusText(resp.StatusCode) {
		errs = append(errs, fmt.Errorf("problem title %q, want %q", p.Title, http.StatusText(resp.StatusCode)))
	}
	return errors.Join(errs...)
}

func isReadyz(resp *http.Response) bool {
	return resp.Request != nil && resp.Request.URL.Path == "/readyz" && resp.StatusCode == http.StatusServiceUnavailable
}

func cloneRequest(req *http.Request, body []byte) *http.Request {
	c := req.Clone(context.Background())
	c.Body = http.NoBody
	if len(body) > 0 {
		c.Body = readCloser{bytes.NewReader(body)}
		c.ContentLength = int64(len(body))
	}
	return c
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// TestOpenAPIDocument checks openapi.yaml itself: valid OpenAPI, and written so
// that generators produce clean code and clients get the whole contract.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	s, err := spec()
	if err != nil {
		t.Fatal(err)
	}
	doc := s.doc

	wantOps := map[string]string{
		"POST /accounts":                     "openAccount",
		"GET /accounts":                      "listAccounts",
		"GET /accounts/{id}":                 "getAccount",
		"POST /accounts/{id}/deposit":        "depositMoney",
		"POST /accounts/{id}/withdraw":       "withdrawMoney",
		"POST /accounts/{id}/close":          "closeAccount",
		"GET /accounts/{id}/transactions":    "listTransactions",
		"GET /accounts/{id}/daily-summaries": "listDailySummaries",
		"GET /accounts/{id}/events":          "listAccountEvents",
		"GET /accounts/{id}/transfers":       "listAccountTransfers",
		"GET /summary":                       "getSummary",
		"GET /events":                        "listEvents",
		"POST /transfers":                    "createTransfer",
		"GET /transfers/{id}":                "getTransfer",
		"GET /healthz":                       "getHealth",
		"GET /readyz":                        "getReadiness",
		"GET /metrics":                       "getMetrics",
		"GET /openapi.yaml":                  "getOpenAPI",
		"GET /docs":                          "getDocs",
	}
	gotOps := map[string]*openapi3.Operation{}
	ids := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			gotOps[key] = op
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", key)
			}
			if ids[op.OperationID] {
				t.Errorf("operationId %q is used twice", op.OperationID)
			}
			ids[op.OperationID] = true
			checkOperation(t, key, op)
		}
	}
	// DESIGN §6: every operation needs a bearer token but the operational
	// ones, and says what a refused or limited caller gets.
	if len(doc.Security) != 1 || doc.Security[0]["bearerAuth"] == nil {
		t.Errorf("security = %v, want bearerAuth applied globally", doc.Security)
	}
	if ss := doc.Components.SecuritySchemes["bearerAuth"]; ss == nil || ss.Value.Type != "http" || ss.Value.Scheme != "bearer" || ss.Value.BearerFormat != "JWT" {
		t.Errorf("components.securitySchemes.bearerAuth is not an http bearer JWT scheme")
	}
	open := map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true, "GET /docs": true, "GET /openapi.yaml": true}
	for key, op := range gotOps {
		if open[key] {
			if op.Security == nil || len(*op.Security) != 0 {
				t.Errorf("%s must declare security: [] (it needs no token)", key)
			}
			continue
		}
		if op.Security != nil {
			t.Errorf("%s overrides the global security", key)
		}
		for status, component := range map[string]string{"401": "Unauthorized", "403": "Forbidden", "429": "TooManyRequests"} {
			if r := op.Responses.Value(status); r == nil || r.Ref != "#/components/responses/"+component {
				t.Errorf("%s does not list %s as the %s component", key, status, component)
			}
		}
	}
	if h := doc.Components.Responses["Unauthorized"].Value.Headers["WWW-Authenticate"]; h == nil || !h.Value.Required {
		t.Error("the Unauthorized response does not document WWW-Authenticate as always sent")
	}
	if h := doc.Components.Responses["TooManyRequests"].Value.Headers["Retry-After"]; h == nil || !h.Value.Required {
		t.Error("the TooManyRequests response does not document Retry-After as always sent")
	}

	for key, id := range wantOps {
		op, ok := gotOps[key]
		switch {
		case !ok:
			t.Errorf("the contract's %s is missing from the spec", key)
		case op.OperationID != id:
			t.Errorf("%s has operationId %q, want %q", key, op.OperationID, id)
		}
	}
	for key := range gotOps {
		if _, ok := wantOps[key]; !ok {
			t.Errorf("the spec has %s, which the contract does not", key)
		}
	}

	for _, name := range []string{
		"Account", "AccountState", "OpenAccountRequest", "MoneyRequest", "CloseRequest", "Transaction",
		"TransactionPage", "AccountPage", "DailySummary", "AuditEvent", "AuditPage", "Summary", "Problem",
		"FieldError", "ProblemCode", "Amount",
	} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("component schema %s is missing", name)
		}
	}
	if got := doc.Components.Schemas["Amount"].Value.Pattern; got != `^(0|[1-9][0-9]*)(\.[0-9]+)?$` {
		t.Errorf("Amount pattern = %q, want the contract's", got)
	}
	var enum []string
	for _, v := range doc.Components.Schemas["ProblemCode"].Value.Enum {
		enum = append(enum, v.(string))
	}
	var codes []string
	for c := range problemStatus {
		codes = append(codes, c)
	}
	sort.Strings(enum)
	sort.Strings(codes)
	if !slices.Equal(enum, codes) {
		t.Errorf("ProblemCode enum = %v, want %v", enum, codes)
	}
	for _, name := range []string{"OpenAccountRequest", "MoneyRequest", "CloseRequest"} {
		ap := doc.Components.Schemas[name].Value.AdditionalProperties
		if ap.Has == nil || *ap.Has {
			t.Errorf("request body %s must have additionalProperties: false", name)
		}
	}

	// No anonymous object anywhere: an object schema is a named component, and
	// everything under a component refers to other components for its objects.
	for name, ref := range doc.Components.Schemas {
		checkNoInlineObjects(t, "components.schemas."+name, ref.Value, true)
	}
}

// checkOperation: every response has a description and X-Request-ID, every
// error is a Problem, every operation has a default, and every command lists
// the problems the contract gives it.
func checkOperation(t *testing.T, key string, op *openapi3.Operation) {
	t.Helper()
	if op.Responses.Default() == nil {
		t.Errorf("%s has no default response", key)
	}
	for status, ref := range op.Responses.Map() {
		r := ref.Value
		if r.Description == nil || *r.Description == "" {
			t.Errorf("%s %s has no description", key, status)
		}
		if h := r.Headers["X-Request-ID"]; h == nil || !h.Value.Required {
			t.Errorf("%s %s does not document X-Request-ID as always sent", key, status)
		}
		code, _ := strconv.Atoi(status)
		if status == "default" || (code >= 400 && key != "GET /readyz") {
			mt := r.Content.Get("application/problem+json")
			if mt == nil || mt.Schema.Ref != "#/components/schemas/Problem" || len(r.Content) != 1 {
				t.Errorf("%s %s is not an application/problem+json Problem", key, status)
			}
		}
		for name, mt := range r.Content {
			if mt.Schema == nil || (mt.Schema.Ref == "" && mt.Schema.Value.Type.Is("object")) {
				t.Errorf("%s %s %s: the body schema must be a named component", key, status, name)
			}
		}
	}
	if op.RequestBody != nil {
		for name, mt := range op.RequestBody.Value.Content {
			if mt.Schema.Ref == "" {
				t.Errorf("%s request body %s: the schema must be a named component", key, name)
			}
		}
	}
	want := map[string][]string{
		"POST /accounts":                     {"201", "400", "409", "413", "422"},
		"POST /accounts/{id}/deposit":        {"200", "400", "404", "409", "412", "413", "422"},
		"POST /accounts/{id}/withdraw":       {"200", "400", "404", "409", "412", "413", "422"},
		"POST /accounts/{id}/close":          {"200", "400", "404", "409", "412", "413", "422"},
		"GET /accounts":                      {"200", "400"},
		"GET /accounts/{id}":                 {"200", "400", "404", "503"},
		"GET /accounts/{id}/transactions":    {"200", "400", "404", "503"},
		"GET /accounts/{id}/daily-summaries": {"200", "400", "404", "503"},
		"GET /accounts/{id}/events":          {"200", "400", "404"},
	}[key]
	for _, status := range want {
		if op.Responses.Value(status) == nil {
			t.Errorf("%s does not list %s", key, status)
		}
	}
	if strings.HasPrefix(key, "POST ") {
		var names []string
		for _, p := range op.Parameters {
			names = append(names, p.Value.Name)
		}
		if !slices.Contains(names, "Idempotency-Key") {
			t.Errorf("%s does not document Idempotency-Key", key)
		}
		if key != "POST /accounts" && key != "POST /transfers" && !slices.Contains(names, "If-Match") {
			t.Errorf("%s does not document If-Match", key)
		}
	}
}

func checkNoInlineObjects(t *testing.T, where string, s *openapi3.Schema, top bool) {
	t.Helper()
	if s == nil {
		return
	}
	if !top && (s.Type.Is("object") || len(s.Properties) > 0) {
		t.Errorf("%s is an anonymous object; make it a named component", where)
		return
	}
	sub := func(name string, ref *openapi3.SchemaRef) {
		if ref != nil && ref.Ref == "" {
			checkNoInlineObjects(t, where+"."+name, ref.Value, false)
		}
	}
	for name, p := range s.Properties {
		sub(name, p)
	}
	sub("items", s.Items)
	for i, r := range append(append(slices.Clone(s.AllOf), s.AnyOf...), s.OneOf...) {
		sub(fmt.Sprintf("[%d]", i), r)
	}
	sub("additionalProperties", s.AdditionalProperties.Schema)
}

// TestRoutesAreDocumented walks the router: every route it serves is in the
// spec. Operations of the spec the router does not serve yet are only logged.
func TestRoutesAreDocumented(t *testing.T) {
	t.Parallel()
	s, err := spec()
	if err != nil {
		t.Fatal(err)
	}
	a := newTestAPI(t)
	routes, ok := a.router.(chi.Routes)
	if !ok {
		t.Fatalf("NewRouter returned %T, not chi.Routes", a.router)
	}
	served := map[string]bool{}
	err = chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		key := method + " " + route
		served[key] = true
		if key == "GET /docs/*" {
			return nil // the reference page's own scripts and styles, not part of the API
		}
		if item := s.doc.Paths.Value(route); item == nil || item.GetOperation(method) == nil {
			t.Errorf("the router serves %s, which openapi.yaml does not document", key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range s.doc.Paths.Map() {
		for method := range item.Operations() {
			if !served[method+" "+path] {
				t.Logf("documented but not served (yet): %s %s", method, path)
			}
		}
	}
}

// TestOperationalEndpoints covers the three operations endpoints; the harness
// validates each against the spec.
func TestOperationalEndpoints(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	if r := a.do("GET", "/healthz", nil); r.StatusCode != 200 || r.JSON(t)["status"] != "ok" {
		t.Errorf("healthz = %d %s", r.StatusCode, r.Body)
	}
	if r := a.do("GET", "/readyz", nil); r.StatusCode != 200 || r.JSON(t)["status"] != "ready" {
		t.Errorf("readyz = %d %s", r.StatusCode, r.Body)
	}
	r := a.do("GET", "/metrics", nil)
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); r.StatusCode != 200 || ct != "text/plain" || !bytes.Contains(r.Body, []byte("http_requests_total")) {
		t.Errorf("metrics = %d %q:\n%.500s", r.StatusCode, r.Header.Get("Content-Type"), r.Body)
	}

	down := newTestAPI(t, func(d *httpapi.Deps) {
		d.Ready = func(context.Context) error {
			return &httpapi.NotReadyError{Reason: "schema is at version 1, want 2", Err: errors.New("detail for the log")}
		}
	})
	r = down.do("GET", "/readyz", nil)
	if m := r.JSON(t); r.StatusCode != 503 || m["status"] != "unavailable" || m["reason"] != "schema is at version 1, want 2" {
		t.Errorf("readyz when not ready = %d %s", r.StatusCode, r.Body)
	}
	if r := a.do("HEAD", "/healthz", nil); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("HEAD /healthz = %d, want 405", r.StatusCode)
	}
}

// TestResponseValidatorCatchesDrift feeds the harness's validator exchanges
// made up by hand, so that a validator which lets everything through cannot
// pass for a green suite.
func TestResponseValidatorCatchesDrift(t *testing.T) {
	t.Parallel()
	id := "9b2f6c1e-4a43-4c59-9a8e-2f1f0c3b7d10"
	state := `{"id":"` + id + `","owner_id":"a","currency":"USD","balance":"1.00","status":"active","version":2}`
	problem := func(status int, code string) string {
		return fmt.Sprintf(`{"type":"urn:problem-type:bank:%s","title":%q,"status":%d,"detail":"d","code":%q}`, code, http.StatusText(status), status, code)
	}
	jsonH := func(kv ...string) http.Header {
		h := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"r1"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				h.Del(kv[i])
			} else {
				h.Set(kv[i], kv[i+1])
			}
		}
		return h
	}
	problemH := func(kv ...string) http.Header {
		return jsonH(append([]string{"Content-Type", "application/problem+json"}, kv...)...)
	}
	dep := "/accounts/" + id + "/deposit"
	for _, tc := range []struct {
		name         string
		method, path string
		reqBody      string
		status       int
		header       http.Header
		body         string
		ok           bool
	}{
		{"command success", "POST", dep, `{"amount":"1.00"}`, 200, jsonH("ETag", `"2"`), state, true},
		{"no X-Request-ID", "POST", dep, `{"amount":"1.00"}`, 200, jsonH("ETag", `"2"`, "X-Request-ID", ""), state, false},
		{"no ETag", "POST", dep, `{"amount":"1.00"}`, 200, jsonH(), state, false},
		{"weak ETag", "POST", dep, `{"amount":"1.00"}`, 200, jsonH("ETag", `W/"2"`), state, false},
		{"extra field", "POST", dep, `{"amount":"1.00"}`, 200, jsonH("ETag", `"2"`), strings.Replace(state, `"version"`, `"extra":1,"version"`, 1), false},
		{"balance as number", "POST", dep, `{"amount":"1.00"}`, 200, jsonH("ETag", `"2"`), strings.Replace(state, `"1.00"`, `1.00`, 1), false},
		{"balance malformed", "POST", dep, `{"amount":"1.00"}`, 200, jsonH("ETag", `"2"`), strings.Replace(state, `"1.00"`, `"01.00"`, 1), false},
		{"unknown status", "POST", dep, `{"amount":"1.00"}`, 200, jsonH("ETag", `"2"`), strings.Replace(state, `active`, `frozen`, 1), false},
		{"spec rejects, server accepts", "POST", dep, `{"amount":1}`, 200, jsonH("ETag", `"2"`), state, false},
		{"open without Location", "POST", "/accounts", `{"owner_id":"a"}`, 201, jsonH("ETag", `"2"`), state, false},
		{"open", "POST", "/accounts", `{"owner_id":"a"}`, 201, jsonH("ETag", `"2"`, "Location", "/accounts/"+id), state, true},
		{"absolute Location", "POST", "/accounts", `{"owner_id":"a"}`, 201, jsonH("ETag", `"2"`, "Location", "http://x/accounts/"+id), state, false},
		{"problem", "POST", dep, `{"amount":"1.00"}`, 422, problemH(), problem(422, "insufficient_funds"), true},
		{"problem as JSON", "POST", dep, `{"amount":"1.00"}`, 422, jsonH(), problem(422, "insufficient_funds"), false},
		{"code of another status", "POST", dep, `{"amount":"1.00"}`, 422, problemH(), problem(422, "not_found"), false},
		{"unknown code", "POST", dep, `{"amount":"1.00"}`, 422, problemH(), problem(422, "nope"), false},
		{"status field differs", "POST", dep, `{"amount":"1.00"}`, 409, problemH(), problem(422, "insufficient_funds"), false},
		{"status not listed", "GET", "/accounts/" + id + "/events", "", 409, problemH(), problem(409, "account_exists"), false},
		{"500 falls to default", "GET", "/accounts/" + id + "/events", "", 500, problemH(), problem(500, "internal_error"), true},
		{"unknown path", "GET", "/nope", "", 404, problemH(), problem(404, "not_found"), true},
		{"unknown path not 404", "GET", "/nope", "", 200, jsonH(), `{}`, false},
		{"405", "GET", dep, "", 405, problemH("Allow", "POST"), problem(405, "method_not_allowed"), true},
		{"405 without Allow", "GET", dep, "", 405, problemH(), problem(405, "method_not_allowed"), false},
		{"405 Allow wrong", "GET", dep, "", 405, problemH("Allow", "DELETE"), problem(405, "method_not_allowed"), false},
		{"404 for a documented method", "GET", dep, "", 404, problemH(), problem(404, "not_found"), false},
		{"401", "POST", dep, `{"amount":"1.00"}`, 401, problemH("WWW-Authenticate", `Bearer realm="bank"`), problem(401, "unauthorized"), true},
		{"401 without WWW-Authenticate", "POST", dep, `{"amount":"1.00"}`, 401, problemH(), problem(401, "unauthorized"), false},
		{"401 with another code", "POST", dep, `{"amount":"1.00"}`, 401, problemH("WWW-Authenticate", `Bearer realm="bank"`), problem(401, "forbidden"), false},
		{"429", "GET", "/accounts/" + id, "", 429, problemH("Retry-After", "3", "RateLimit-Limit", "2", "RateLimit-Remaining", "0", "RateLimit-Reset", "9"), problem(429, "rate_limited"), true},
		{"429 without Retry-After", "GET", "/accounts/" + id, "", 429, problemH(), problem(429, "rate_limited"), false},
		{"healthz has no 401", "GET", "/healthz", "", 401, problemH("WWW-Authenticate", `Bearer realm="bank"`), problem(401, "unauthorized"), false},
		{"readyz down", "GET", "/readyz", "", 503, jsonH(), `{"status":"unavailable","reason":"db down"}`, true},
		{"readyz bad status", "GET", "/readyz", "", 200, jsonH(), `{"status":"fine"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rd io.Reader
			if tc.reqBody != "" {
				rd = strings.NewReader(tc.reqBody)
			}
			req, err := http.NewRequest(tc.method, "http://api.test"+tc.path, rd)
			if err != nil {
				t.Fatal(err)
			}
			if tc.reqBody != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp := &http.Response{StatusCode: tc.status, Header: tc.header, Request: req}
			err = checkExchange(req, []byte(tc.reqBody), resp, []byte(tc.body))
			if tc.ok && err != nil {
				t.Errorf("a conforming exchange was refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Error("a drifting exchange passed")
			}
		})
	}
}
