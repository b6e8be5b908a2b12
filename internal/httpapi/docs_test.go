package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
)

// The contract check decodes every response body it validates; these two are
// strings to it, as the spec declares them.
func init() {
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/yaml", openapi3filter.PlainBodyDecoder)
}

// noRedirect shows a redirect instead of following it.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// TestDocsArePublic: the contract and its reference page answer without a
// token (DESIGN §6), the contract byte for byte the repository's openapi.yaml
// and the page under a Content-Security-Policy (DESIGN §2).
func TestDocsArePublic(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)

	spec := a.do("GET", "/openapi.yaml", nil, "Authorization", "<delete>")
	if spec.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.yaml without a token: %d %.300s", spec.StatusCode, spec.Body)
	}
	want, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(spec.Body, want) {
		t.Error("GET /openapi.yaml is not the repository's openapi.yaml")
	}

	page := a.do("GET", "/docs", nil, "Authorization", "<delete>")
	if page.StatusCode != http.StatusOK || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs without a token: %d %s", page.StatusCode, page.Header.Get("Content-Type"))
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("GET /docs: Content-Security-Policy %q", csp)
	}

	// The page's files are not operations of the spec: fetched past the
	// contract check.
	for path, status := range map[string]int{
		"/docs/swagger-ui-bundle.js": http.StatusOK,
		"/docs/init.js":              http.StatusOK,
		"/docs/nothing.js":           http.StatusNotFound,
		"/docs/../openapi.yaml":      http.StatusNotFound,
		"/docs/":                     http.StatusMovedPermanently,
	} {
		resp, err := noRedirect.Get(a.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("GET %s without a token: %d, want %d", path, resp.StatusCode, status)
		}
		if loc := resp.Header.Get("Location"); status == http.StatusMovedPermanently && loc != "/docs" {
			t.Errorf("GET %s: Location %q, want /docs", path, loc)
		}
	}
}
