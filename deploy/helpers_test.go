package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// root is the repository root, seen from this package.
const root = ".."

// binDir holds api and projector, built once per test binary by binaries.
var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds cmd/api and cmd/projector and returns the directory that
// holds them.
func binaries(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "deploy-bin-"); binErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		// Default flags, so that the build cache of go vet and the linters serves.
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binDir+string(filepath.Separator), "./cmd/api", "./cmd/projector")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// envVar is one row of the environment table that `api -h` and
// `projector -h` print.
type envVar struct {
	Name    string
	Default string // "(required)" for a required variable, "-" for none
	Meaning string
}

func (v envVar) required() bool { return v.Default == "(required)" }

// processes are the binaries, each with its environment table.
var processes = []string{"api", "projector"}

// usageVars runs `<process> -h` with an empty environment and returns its
// environment table, in order.
func usageVars(t *testing.T, process string) []envVar {
	t.Helper()
	bin := filepath.Join(binaries(t), process)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-h")
	cmd.Env = []string{}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s -h: %v\n%s", process, err, stderr.String())
	}
	vars, err := parseUsage(out)
	if err != nil {
		t.Fatalf("%s -h: %v\n%s", process, err, out)
	}
	return vars
}

// parseUsage reads the aligned table after the line "Environment:": a header
// "NAME DEFAULT MEANING" whose column offsets cut every row that follows.
func parseUsage(out []byte) ([]envVar, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	found := false
	for !found && sc.Scan() {
		found = strings.TrimSpace(sc.Text()) == "Environment:"
	}
	if !found || !sc.Scan() {
		return nil, fmt.Errorf("no table after \"Environment:\"")
	}
	header := sc.Text()
	if f := strings.Fields(header); len(f) != 3 || f[0] != "NAME" || f[1] != "DEFAULT" || f[2] != "MEANING" {
		return nil, fmt.Errorf("table header %q, want NAME DEFAULT MEANING", header)
	}
	name, def, meaning := strings.Index(header, "NAME"), strings.Index(header, "DEFAULT"), strings.Index(header, "MEANING")
	var vars []envVar
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			break
		}
		if len(line) <= meaning || strings.TrimSpace(line[:name]) != "" || line[def-1] != ' ' || line[meaning-1] != ' ' {
			return nil, fmt.Errorf("row %q is not aligned with the header %q", line, header)
		}
		vars = append(vars, envVar{
			Name:    strings.TrimSpace(line[name:def]),
			Default: strings.TrimSpace(line[def:meaning]),
			Meaning: strings.TrimSpace(line[meaning:]),
		})
	}
	if len(vars) == 0 {
		return nil, fmt.Errorf("empty environment table")
	}
	return vars, sc.Err()
}

// byName indexes vars by name.
func byName(vars []envVar) map[string]envVar {
	m := make(map[string]envVar, len(vars))
	for _, v := range vars {
		m[v.Name] = v
	}
	return m
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
