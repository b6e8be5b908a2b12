package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/client"
)

// TestMakeRun runs devrun as `make run` does (`devrun bin/api bin/projector`,
// no DATABASE_URL): it starts its own PostgreSQL with the data in
// ./.data/postgres, the api and the projector; Ctrl-C (SIGINT) stops all of
// them and devrun exits 0; a second run finds the data of the first. As a
// newcomer would, it then uses `make token` (the devtoken command it runs):
// the README's flow works with the token and answers 401 without it.
func TestMakeRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	natsPort := devPort(t)
	env := []string{
		"DEV_PG_PORT=" + strconv.Itoa(devPort(t)),
		"DEV_NATS_PORT=" + strconv.Itoa(natsPort),
		"HTTP_ADDR=127.0.0.1:0",
		"PROJECTOR_ADDR=127.0.0.1:0",
		"LOG_LEVEL=info",
	}
	dataDir := filepath.Join(dir, ".data", "postgres")

	var (
		id    uuid.UUID
		token string
	)
	t.Run("first run", func(t *testing.T) {
		run := startDevrun(t, dir, env)
		token = makeToken(t, dir, "erin", "bank:read bank:write")
		if fi, err := os.Stat(filepath.Join(dir, ".data", "auth", "signing-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("development signing key: %v, %v; want a 0600 file in .data/auth", fi, err)
		}

		// Without a token, or with a made-up one: 401, nothing else.
		anon := newClient(t, run.apiURL, "")
		lres, err := anon.ListAccountsWithResponse(context.Background(), nil)
		if err != nil || lres.StatusCode() != 401 || lres.HTTPResponse.Header.Get("WWW-Authenticate") != `Bearer realm="bank"` {
			t.Fatalf("GET /accounts without a token: %v %d %v %s", err, lres.StatusCode(), lres.HTTPResponse.Header, lres.Body)
		}
		forged := newClient(t, run.apiURL, token[:len(token)-4]+"AAAA")
		fres, err := forged.OpenAccountWithResponse(context.Background(), nil, client.OpenAccountRequest{OwnerId: ptr("erin")})
		if err != nil || fres.StatusCode() != 401 || fres.ApplicationproblemJSON401 == nil {
			t.Fatalf("POST /accounts with a forged token: %v %d %s", err, fres.StatusCode(), fres.Body)
		}

		// The README's flow with erin's token: open, deposit, read the write.
		c := newClient(t, run.apiURL, token)
		acc := openAccount(t, c, "erin", "JPY", "500")
		id = acc.Id
		t.Logf("POST /accounts answered %s after devrun started", time.Since(run.started).Round(time.Millisecond))
		st := deposit(t, c, id, "25", "refund", &client.DepositMoneyParams{IdempotencyKey: ptr("refund-1")})
		// The projector runs too: the account reaches the read side.
		res, err := c.GetAccountWithResponse(context.Background(), id, &client.GetAccountParams{MinVersion: ptr(int(st.Version))})
		if err != nil || res.JSON200 == nil || res.JSON200.Balance != "525" {
			t.Fatalf("GET /accounts/%s?min_version=%d: %v %s", id, st.Version, err, res.Body)
		}
		tres, err := c.ListTransactionsWithResponse(context.Background(), id, nil)
		if err != nil || tres.JSON200 == nil || len(tres.JSON200.Items) != 2 {
			t.Fatalf("GET /accounts/%s/transactions: %v %s", id, err, tres.Body)
		}
		// And the embedded broker: the account's three events are in the stream.
		waitStreamMsgs(t, natsPort, 3)
		run.interrupt(t, dataDir)
	})
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		t.Fatalf("no cluster in ./.data/postgres after the first run: %v", err)
	}
	if id == uuid.Nil {
		t.FailNow()
	}

	t.Run("restart keeps the data", func(t *testing.T) {
		run := startDevrun(t, dir, env)
		// The key survives the restart: the first run's token still works.
		c := newClient(t, run.apiURL, token)
		res, err := c.GetAccountWithResponse(context.Background(), id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a := res.JSON200; a == nil || a.OwnerId != "erin" || a.Balance != "525" || a.Version != 3 {
			t.Errorf("GET /accounts/%s after the restart: %d %s; want erin's account at 525 JPY", id, res.StatusCode(), res.Body)
		}
		// The stream survived in .data/nats, and nothing was published twice.
		waitStreamMsgs(t, natsPort, 3)
		time.Sleep(200 * time.Millisecond)
		waitStreamMsgs(t, natsPort, 3)
		run.interrupt(t, dataDir)
	})
}

// makeToken runs what `make token` runs, in dir (the checkout), and returns
// the token it prints.
func makeToken(t *testing.T, dir, sub, scope string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, devtokenBin, "-sub", sub, "-scope", scope)
	cmd.Dir = dir
	cmd.Env = childEnv(nil)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make token: %v", err)
	}
	tok := strings.TrimSpace(string(out))
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("make token printed %q, not a JWT alone", out)
	}
	return tok
}

type devrun struct {
	*process
	apiURL  string
	started time.Time
}

// startDevrun starts devrun in dir and waits until the api it runs is ready
// (PostgreSQL's initdb included, within a minute).
func startDevrun(t *testing.T, dir string, env []string) *devrun {
	t.Helper()
	started := time.Now()
	p := startProcess(t, "devrun", dir, devrunBin, env, apiBin, projectorBin)
	api := &service{process: p, url: "http://" + p.listenAddr(t, "api", "api listening")}
	p.listenAddr(t, "projector", "projector listening")
	eventually(t, time.Minute-time.Since(started), func() (bool, string) {
		if !p.running() {
			t.Fatalf("devrun exited (%s)", p.exitStatus())
		}
		code, body, err := get(api.url + "/readyz")
		return err == nil && code == 200, fmt.Sprintf("api /readyz: %d %s %v", code, body, err)
	})
	return &devrun{process: p, apiURL: api.url, started: started}
}

// interrupt sends SIGINT (Ctrl-C) to devrun and requires it to exit 0 and to
// leave no process behind: not the api, the projector, postgres or any of
// postgres's backends.
func (d *devrun) interrupt(t *testing.T, dataDir string) {
	t.Helper()
	procs := map[int]string{}
	for _, pid := range childPIDs(d.pid()) {
		procs[pid] = comm(pid)
	}
	pidFile, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatalf("postgres is not running from ./.data/postgres: %v", err)
	}
	postmaster, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pidFile), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	for _, pid := range childPIDs(postmaster) {
		procs[pid] = "postgres backend " + comm(pid)
	}
	var names []string
	for _, n := range procs {
		names = append(names, n)
	}
	for _, want := range []string{"api", "projector", "postgres"} {
		if !slices.Contains(names, want) {
			t.Errorf("devrun's children %v lack %s", names, want)
		}
	}
	if procs[postmaster] == "" {
		t.Errorf("postgres (pid %d) is not devrun's child; its children: %v", postmaster, procs)
	}

	d.signal(t, syscall.SIGINT)
	if code := d.wait(t, 45*time.Second); code != 0 {
		t.Errorf("devrun exit code %d after SIGINT; want 0", code)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		var left []string
		for pid, name := range procs {
			if alive(pid) {
				left = append(left, fmt.Sprintf("%s (pid %d)", name, pid))
			}
		}
		if users := processesUsing(dataDir); len(users) > 0 {
			left = append(left, users...)
		}
		return len(left) == 0, fmt.Sprintf("still running after devrun exited: %v", left)
	})
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); err == nil {
		t.Error("postmaster.pid left behind: postgres did not shut down cleanly")
	}
}

// processesUsing lists the processes whose command line names dir (pgrep -f).
func processesUsing(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), dir) && alive(pid) {
			out = append(out, fmt.Sprintf("pid %d: %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
	}
	return out
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// devPort returns a free TCP port on 127.0.0.1 for devrun's PostgreSQL,
// below the kernel's ephemeral range: between this check and postgres's bind,
// no outgoing connection of the other tests can take it as its local port.
func devPort(t *testing.T) int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				low = n
			}
		}
	}
	for range 100 {
		port := 10000 + rand.IntN(low-10000)
		l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			_ = l.Close()
			return port
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

// waitStreamMsgs waits until the stream of the broker that devrun runs on
// port holds exactly n messages.
func waitStreamMsgs(t *testing.T, port, n int) {
	t.Helper()
	js := connectJS(t, "nats://127.0.0.1:"+strconv.Itoa(port))
	eventually(t, 30*time.Second, func() (bool, string) {
		st, err := js.Stream(context.Background(), "BANK_EVENTS")
		if err != nil {
			return false, err.Error()
		}
		info, err := st.Info(context.Background())
		if err != nil {
			return false, err.Error()
		}
		if info.State.Msgs > uint64(n) {
			t.Fatalf("stream BANK_EVENTS holds %d messages, want %d", info.State.Msgs, n)
		}
		return info.State.Msgs == uint64(n), fmt.Sprintf("stream BANK_EVENTS holds %d messages, want %d", info.State.Msgs, n)
	})
}
