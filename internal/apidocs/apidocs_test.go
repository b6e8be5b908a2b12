package apidocs_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/evbank/bank/internal/apidocs"
)

// root is the repository root, seen from this package.
const root = "../.."

// lockedVersion is the renderer's version in package-lock.json.
func lockedVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		t.Fatal(err)
	}
	v := lock.Packages["node_modules/"+apidocs.Package].Version
	if v == "" {
		t.Fatalf("package-lock.json has no %s", apidocs.Package)
	}
	return v
}

// TestVendoredVersion: the embedded renderer is the one package-lock.json
// pins, so a version bump in package.json cannot ship without re-vendoring.
func TestVendoredVersion(t *testing.T) {
	t.Parallel()
	got, err := os.ReadFile("assets/VERSION")
	if err != nil {
		t.Fatal(err)
	}
	if want := lockedVersion(t); strings.TrimSpace(string(got)) != want {
		t.Fatalf("assets/ holds %s %s, package-lock.json pins %s: run `make docs-assets`",
			apidocs.Package, strings.TrimSpace(string(got)), want)
	}
}

// TestVendoredFilesAreThePackages: each vendored file is the npm package's,
// changed only by Prepare. It needs node_modules at package-lock.json's
// versions: `make test` runs `npm ci` when they are missing or older than the
// lock file; a bare `go test` without them fails saying so.
func TestVendoredFilesAreThePackages(t *testing.T) {
	t.Parallel()
	dist := filepath.Join(root, "node_modules", apidocs.Package)
	b, err := os.ReadFile(filepath.Join(dist, "package.json"))
	if err != nil {
		t.Fatalf("%s is not installed (run npm ci, or make test): cannot compare the vendored files with it: %v", apidocs.Package, err)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	if pkg.Version != lockedVersion(t) {
		t.Fatalf("node_modules has %s %s, not package-lock.json's %s (run npm ci, or make test)", apidocs.Package, pkg.Version, lockedVersion(t))
	}
	for _, name := range apidocs.Vendored {
		src, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("assets", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, apidocs.Prepare(src)) {
			t.Errorf("assets/%s differs from %s's: run `go run ./tools/vendordocs`", name, apidocs.Package)
		}
	}
}

func TestPrepareDropsSourceMaps(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"a{}\n/*# sourceMappingURL=swagger-ui.css.map*/\n": "a{}\n",
		"x();\n//# sourceMappingURL=b.js.map":              "x();\n",
		"x(); // sourceMappingURL is not a comment here\n": "x(); // sourceMappingURL is not a comment here\n",
	} {
		if got := string(apidocs.Prepare([]byte(in))); got != want {
			t.Errorf("Prepare(%q) = %q, want %q", in, got, want)
		}
	}
}

var (
	pageRef  = regexp.MustCompile(`(?:src|href)="([^"]*)"`)
	anyURL   = regexp.MustCompile(`\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	inlineJS = regexp.MustCompile(`<script>|<script [^>]*>[^<\s]|\son[a-z]+=|style=`)
)

// TestPageLoadsOnlyItsOwnFiles: every file the page refers to is served
// under /docs/, none is on another host, and nothing is inline (the CSP
// would refuse it). The browser test in e2e proves the same by watching
// the requests; this one runs without a browser.
func TestPageLoadsOnlyItsOwnFiles(t *testing.T) {
	t.Parallel()
	d := apidocs.New([]byte("openapi: 3.0.3\n"))
	page := get(t, d, "/docs")
	if page.Code != http.StatusOK {
		t.Fatalf("GET /docs: %d", page.Code)
	}
	if m := inlineJS.FindString(page.Body.String()); m != "" {
		t.Errorf("the page has inline script or style (%q), which its CSP forbids", m)
	}
	refs := pageRef.FindAllStringSubmatch(page.Body.String(), -1)
	if len(refs) < 4 {
		t.Fatalf("the page refers to only %v", refs)
	}
	for _, m := range refs {
		ref := m[1]
		if ref == "data:," {
			continue // the empty favicon
		}
		name, ok := strings.CutPrefix(ref, "/docs/")
		if !ok {
			t.Errorf("the page loads %s, not a file under /docs/", ref)
			continue
		}
		if r := get(t, d, "/docs/"+name); r.Code != http.StatusOK {
			t.Errorf("the page loads %s, which is not served (%d)", ref, r.Code)
		}
	}
	initJS, err := os.ReadFile("assets/init.js")
	if err != nil {
		t.Fatal(err)
	}
	if m := anyURL.FindString(string(initJS)); m != "" {
		t.Errorf("init.js names another host: %s", m)
	}
}

// TestHeaders: the page, its files and the spec carry the CSP, a type the
// browser does not sniff, and an entity tag that makes a revalidation 304.
func TestHeaders(t *testing.T) {
	t.Parallel()
	spec := []byte("openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\n")
	d := apidocs.New(spec)
	for path, ctype := range map[string]string{
		"/docs":                      "text/html; charset=utf-8",
		"/docs/swagger-ui-bundle.js": "text/javascript; charset=utf-8",
		"/docs/swagger-ui.css":       "text/css; charset=utf-8",
		"/docs/init.js":              "text/javascript; charset=utf-8",
		"/openapi.yaml":              "application/yaml",
	} {
		r := get(t, d, path)
		if r.Code != http.StatusOK {
			t.Errorf("GET %s: %d", path, r.Code)
			continue
		}
		h := r.Header()
		if got := h.Get("Content-Type"); got != ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", path, got, ctype)
		}
		if got := h.Get("Content-Security-Policy"); got != apidocs.ContentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy %q", path, got)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", path)
		}
		etag := h.Get("ETag")
		if !strings.HasPrefix(etag, `"`) {
			t.Errorf("GET %s: ETag %q is not a strong entity tag", path, etag)
			continue
		}
		if again := get(t, d, path, "If-None-Match", etag); again.Code != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match its ETag: %d, want 304", path, again.Code)
		}
	}
	if got := get(t, d, "/openapi.yaml").Body.Bytes(); !bytes.Equal(got, spec) {
		t.Errorf("GET /openapi.yaml = %q, want the spec given to New", got)
	}
	csp := apidocs.ContentSecurityPolicy
	for _, directive := range []string{"default-src 'none'", "script-src 'self';", "connect-src 'self';", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, directive) {
			t.Errorf("the CSP lacks %s", directive)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("the CSP allows something unsafe: %s", csp)
	}
}

// get sends path to the handler the api would route it to.
func get(t *testing.T, d *apidocs.Docs, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	switch path {
	case "/docs":
		d.Page(w, req)
	case "/openapi.yaml":
		d.Spec(w, req)
	default:
		if !d.Asset(w, req, strings.TrimPrefix(path, "/docs/")) {
			w.WriteHeader(http.StatusNotFound)
		}
	}
	return w
}
