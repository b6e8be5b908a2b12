// Command vendordocs copies the API reference renderer from node_modules into
// internal/apidocs/assets, where go:embed puts it into the api binary:
//
//	make docs-assets
//
// Run it after changing the renderer's version in package.json; the apidocs
// tests fail while the committed files are not those of package-lock.json's
// version.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/evbank/bank/internal/apidocs"
)

func main() {
	if err := run("node_modules/"+apidocs.Package, "internal/apidocs/assets"); err != nil {
		fmt.Fprintln(os.Stderr, "vendordocs:", err)
		os.Exit(1)
	}
}

func run(src, dst string) error {
	b, err := os.ReadFile(filepath.Join(src, "package.json"))
	if err != nil {
		return fmt.Errorf("%w (run npm ci first)", err)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(b, &pkg); err != nil {
		return fmt.Errorf("%s/package.json: %w", src, err)
	}
	for _, name := range apidocs.Vendored {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, name), apidocs.Prepare(b), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dst, "VERSION"), []byte(pkg.Version+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Printf("vendored %s %s into %s\n", apidocs.Package, pkg.Version, dst)
	return nil
}
