// Package apidocs serves the API's contract (GET /openapi.yaml) and a
// reference page rendering it (GET /docs): Swagger UI, vendored from npm into
// assets/ and embedded, so that the page loads nothing from another host and
// works on a machine with no internet access (DESIGN §2).
package apidocs

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"
)

//go:embed assets
var assets embed.FS

// ContentSecurityPolicy is sent with the page and every file of it: scripts,
// styles and fetches from the api itself only, no inline script or style, no
// framing, no form posting anywhere. data: images are Swagger UI's own icons,
// which its stylesheet inlines.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; font-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// file is one response body with what its headers need.
type file struct {
	body        []byte
	etag        string
	contentType string
}

func newFile(name string, body []byte) file {
	sum := sha256.Sum256(body)
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "text/plain; charset=utf-8" // LICENSE, NOTICE, VERSION
	}
	return file{body: body, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, contentType: ct}
}

// Docs serves the contract and the page. Its bodies are fixed at start, so
// their entity tags are computed once.
type Docs struct {
	spec  file
	files map[string]file
}

// New returns the handlers over spec, the contract's YAML.
func New(spec []byte) *Docs {
	d := &Docs{spec: newFile("openapi.yaml", spec), files: map[string]file{}}
	// RFC 9512; mime's table does not know .yaml everywhere.
	d.spec.contentType = "application/yaml"
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	err = fs.WalkDir(sub, ".", func(name string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, name)
		if err == nil {
			d.files[name] = newFile(name, b)
		}
		return err
	})
	if err != nil {
		panic(err) // embedded files cannot fail to read
	}
	return d
}

// Spec serves openapi.yaml.
func (d *Docs) Spec(w http.ResponseWriter, r *http.Request) {
	serve(w, r, d.spec)
}

// Page serves the reference page.
func (d *Docs) Page(w http.ResponseWriter, r *http.Request) {
	serve(w, r, d.files["index.html"])
}

// Asset serves the page's file name (a path below /docs/) and reports false,
// writing nothing, when there is no such file.
func (d *Docs) Asset(w http.ResponseWriter, r *http.Request, name string) bool {
	f, ok := d.files[name]
	if ok {
		serve(w, r, f)
	}
	return ok
}

func serve(w http.ResponseWriter, r *http.Request, f file) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Type", f.contentType)
	// Revalidate every time: the files change with the binary, and the entity
	// tag makes an unchanged one a 304.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
