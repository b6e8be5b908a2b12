package client

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	configFile    = "oapi-codegen.yaml"
	generatedFile = "client.gen.go"
	specFile      = "../openapi.yaml"
)

// outputLine is the config's output setting, which the test points elsewhere.
var outputLine = regexp.MustCompile(`(?m)^output:[ \t]*(\S+)[ \t]*$`)

// TestGeneratedCodeIsCurrent regenerates the client from openapi.yaml with the
// committed configuration, into a temporary directory, and fails when the
// committed client.gen.go differs: the spec (or the config) changed without
// `go generate ./client`.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	t.Parallel()
	cfg, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	m := outputLine.FindAllSubmatch(cfg, -1)
	if len(m) != 1 || string(m[0][1]) != generatedFile {
		t.Fatalf("%s must have exactly one line `output: %s` (the go:generate line in doc.go relies on it)", configFile, generatedFile)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, generatedFile)
	tmpCfg := filepath.Join(dir, configFile)
	// The same settings; only where the code is written differs.
	if err := os.WriteFile(tmpCfg, outputLine.ReplaceAll(cfg, []byte("output: "+out)), 0o600); err != nil {
		t.Fatal(err)
	}

	// Run from this directory, as go:generate does: `go tool` resolves the
	// generator pinned in go.mod.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "tool", "oapi-codegen", "-config", tmpCfg, specFile)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
	}

	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(generatedFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: openapi.yaml or %s changed since it was generated; run `go generate ./client` and commit the result.\n%s",
			generatedFile, configFile, firstDifference(got, want))
	}
}

// firstDifference shows the first line where the committed code (got) and the
// regenerated code (want) differ.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	line := func(lines []string, i int) string {
		if i < len(lines) {
			return lines[i]
		}
		return "(end of file)"
	}
	for i := 0; i < max(len(g), len(w)); i++ {
		if gl, wl := line(g, i), line(w, i); gl != wl {
			return fmt.Sprintf("first difference at line %d:\n  committed:   %s\n  regenerated: %s", i+1, gl, wl)
		}
	}
	return ""
}
