package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evbank/bank/internal/testwait"
)

// process is a binary under test running as a child process. Its output is
// kept; the test's clean-up kills it if it still runs, fails the test on a
// data race it reported, and logs its output when the test failed.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{} // closed once the process has exited and been waited for
	err  error         // cmd.Wait's error, set before done is closed
}

// logBuffer keeps a process's combined output; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// controlledEnv are the variables the tests set for the binaries: an outer
// value (a developer's DATABASE_URL, say) must not leak into a test.
var controlledEnv = []string{
	"DATABASE_URL", "READ_DATABASE_URL", "HTTP_ADDR", "PROJECTOR_ADDR", "MIGRATE_ON_START", "LOG_LEVEL", "LOG_FORMAT",
	"SNAPSHOT_EVERY", "DEFAULT_CURRENCY", "MIN_VERSION_WAIT", "SHUTDOWN_TIMEOUT", "DB_MAX_CONNS", "COMMAND_MAX_ATTEMPTS",
	"IDEMPOTENCY_KEY_TTL", "DEV_PG_PORT", "REQUEST_TIMEOUT", "RATE_LIMIT", "RATE_LIMIT_BURST",
	"AUTH_MODE", "AUTH_JWKS_URL", "AUTH_JWKS_FILE", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_CLOCK_SKEW",
}

// childEnv is this process's environment without the controlled variables,
// plus env ("NAME=value"; later entries win).
func childEnv(env []string) []string {
	out := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(controlledEnv, name) || strings.HasPrefix(name, "PROJECTOR_") || strings.HasPrefix(name, "HTTP_")
	})
	return append(out, env...)
}

// startProcess runs bin with args in a process group of its own, with the
// given environment on top of childEnv's, in dir (the current directory when "").
func startProcess(t *testing.T, name, dir, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: name, out: &logBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...) // no context: stopped by signals, which is what the tests are about
	p.cmd.Dir = dir
	p.cmd.Env = childEnv(env)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	// A group of its own: the terminal's Ctrl-C on `go test` reaches the test only.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.running() {
			p.kill()
		}
		out := p.out.String()
		if i := strings.Index(out, "WARNING: DATA RACE"); i >= 0 {
			t.Errorf("%s reported a data race:\n%s", name, out[i:min(len(out), i+8000)])
		}
		if t.Failed() {
			t.Logf("output of %s (%s):\n%s", name, p.exitStatus(), tail(out, 24<<10))
		}
	})
	return p
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *process) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
}

// kill SIGKILLs the process and waits for it.
func (p *process) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// wait waits at most timeout for the process to exit and returns its exit
// code (-1 when a signal ended it); it fails the test on time-out.
func (p *process) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s still running after %s", p.name, timeout)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *process) exitStatus() string {
	if p.running() {
		return "running"
	}
	if p.err == nil {
		return "exit status 0"
	}
	return p.err.Error()
}

// logLine waits up to timeout for a JSON log line whose message is msg (and,
// when process is not "", whose "process" field is process) and returns it.
func (p *process) logLine(t *testing.T, timeout time.Duration, process, msg string) map[string]any {
	t.Helper()
	var found map[string]any
	eventually(t, timeout, func() (bool, string) {
		if found = findLogLine(p.out.String(), process, msg); found != nil {
			return true, ""
		}
		if !p.running() {
			t.Fatalf("%s exited (%s) before logging %q:\n%s", p.name, p.exitStatus(), msg, tail(p.out.String(), 16<<10))
		}
		return false, fmt.Sprintf("%s has not logged %q", p.name, msg)
	})
	return found
}

func findLogLine(out, process, msg string) map[string]any {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(msg)) {
			continue
		}
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		if m["message"] == msg && (process == "" || m["process"] == process) {
			return m
		}
	}
	return nil
}

// listenAddr waits for the "<what> listening" line of a process started with
// an address on port 0 and returns the address it got.
func (p *process) listenAddr(t *testing.T, process, msg string) string {
	t.Helper()
	line := p.logLine(t, 60*time.Second, process, msg)
	addr, _ := line["addr"].(string)
	if addr == "" {
		t.Fatalf("%s: %q without an addr: %v", p.name, msg, line)
	}
	return addr
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "[...]\n" + s
}

// alive reports whether pid is a process that has not exited (a zombie, exited
// but not yet reaped, counts as gone).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) state ...; comm may hold spaces and parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// childPIDs lists the direct children of pid (Linux).
func childPIDs(pid int) []int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []int
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			var c int
			if _, err := fmt.Sscan(f, &c); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// eventually waits for cond, failing the test with cond's last explanation
// after timeout.
func eventually(t *testing.T, timeout time.Duration, cond func() (ok bool, why string)) {
	t.Helper()
	testwait.Until(t, timeout, cond)
}
