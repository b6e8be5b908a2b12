package e2e

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestExampleTransfer runs examples/transfer, the client's example for
// integrators, against a real api: it must finish the transfer and print
// both audit trails.
func TestExampleTransfer(t *testing.T) {
	t.Parallel()
	s := newStack(t, false)
	api := s.startAPI(t)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A customer's token, as `make token` prints: the accounts are its own.
	token := s.iss.TokenFor("erin", "bank:read bank:write")
	cmd := exec.CommandContext(ctx, exampleBin)
	cmd.Env = childEnv([]string{"BANK_URL=" + api.url, "BANK_TOKEN=" + token})
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("examples/transfer: %v\n%s", err, out)
	}
	t.Logf("examples/transfer:\n%s", out)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`deposited 100.00 into \S+: balance 100.00`),
		regexp.MustCompile(`transfer \S+ of 30.00 USD: completed`),
		regexp.MustCompile(`(?m)^  v1 +AccountOpened `),
		regexp.MustCompile(`(?m)^  v3 +TransferSent `),
		regexp.MustCompile(`(?m)^  v2 +TransferReceived `),
	} {
		if !want.Match(out) {
			t.Errorf("the output lacks %s", want)
		}
	}
	if n := strings.Count(string(out), "audit trail of "); n != 2 {
		t.Errorf("%d audit trails printed, want 2", n)
	}

	// Without a token it says what to do, and fails.
	cmd = exec.CommandContext(ctx, exampleBin)
	cmd.Env = childEnv([]string{"BANK_URL=" + api.url, "BANK_TOKEN="})
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "make token") {
		t.Errorf("without BANK_TOKEN: %v %s", err, out)
	}
}
