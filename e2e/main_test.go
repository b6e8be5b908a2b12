package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/evbank/bank/internal/pgtest"
)

// The binaries under test, built once by TestMain.
var (
	apiBin       string
	projectorBin string
	devrunBin    string
	devtokenBin  string // what `make token` runs
	exampleBin   string // examples/transfer
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "bank-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	apiBin = filepath.Join(dir, "api")
	projectorBin = filepath.Join(dir, "projector")
	devrunBin = filepath.Join(dir, "devrun")
	devtokenBin = filepath.Join(dir, "devtoken")
	exampleBin = filepath.Join(dir, "transfer")
	// Starts the PostgreSQL server for pgtest.NewDatabase, and fails (never
	// skips) when there is none to be had.
	return pgtest.Run(m)
}

// build compiles the binaries into dir, with the race detector when this test
// binary has it.
func build(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/api", "./cmd/projector", "./tools/devrun", "./tools/devtoken", "./examples/transfer")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = ".." // the module root
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %w\n%s", args, err, out)
	}
	fmt.Fprintf(os.Stderr, "e2e: built api, projector, devrun, devtoken and examples/transfer (race detector %v) in %s\n", raceEnabled, time.Since(start).Round(time.Millisecond))
	return nil
}
