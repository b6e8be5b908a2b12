package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// buildBinaries builds api and projector of the module at root into dir, as
// `make build` does; profiling adds the api's pprof server (-tags pprof).
func buildBinaries(ctx context.Context, root, dir string, profiling bool) error {
	args := []string{"build", "-trimpath", "-o", dir + string(os.PathSeparator)}
	if profiling {
		args = append(args, "-tags", "pprof")
	}
	cmd := exec.CommandContext(ctx, goTool(), append(args, "./cmd/api", "./cmd/projector")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build ./cmd/...: %w\n%s", err, out)
	}
	return nil
}

// goTool is the go command of the toolchain running this program when it can
// be found, else the one on PATH.
func goTool() string {
	if p := filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// moduleRoot finds the directory holding go.mod, from dir upwards.
func moduleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from the module")
		}
		dir = parent
	}
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(ctx context.Context) (string, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// process is a started api or projector.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{}
	err     error
}

// startProcess runs bin with env (and nothing else of ours), logging to logPath.
func startProcess(name, bin string, args, env []string, logPath string) (*process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// Stopped by stop (SIGTERM, then SIGKILL), not by a context: a context would
	// kill it before its shutdown had a chance.
	cmd := exec.Command(bin, args...) //nolint:noctx // see above
	cmd.Env = env
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, logFile: f, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// exitErr is why the process ended (call only once done is closed).
func (p *process) exitErr() error {
	if p.err == nil {
		return errors.New("exit status 0")
	}
	return p.err
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits, killing the process after timeout.
func (p *process) stop(timeout time.Duration) error {
	defer func() { _ = p.logFile.Close() }()
	if p.exited() {
		return fmt.Errorf("%s had exited: %w; log tail:\n%s", p.name, p.exitErr(), p.logTail(2000))
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s: %w", p.name, p.err)
		}
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s and was killed", p.name, timeout)
	}
}

// logTail returns the last n bytes of the process's log.
func (p *process) logTail(n int64) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	b, _ := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	return string(b)
}

// waitHTTP waits until url answers 200, the process exits, or timeout passes.
func waitHTTP(ctx context.Context, p *process, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start-up (%w); log tail:\n%s", p.name, p.exitErr(), p.logTail(4000))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s within %s; log tail:\n%s", p.name, url, timeout, p.logTail(4000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// peakRSS returns VmHWM of pid in bytes (0 when /proc cannot tell).
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// fetch GETs url and returns the body.
func fetch(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}

// promSum adds up every sample of the Prometheus metric name in a text exposition.
func promSum(text []byte, name string) float64 {
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name)
		switch {
		case !ok || rest == "":
			continue
		case rest[0] == '{':
			i := strings.IndexByte(rest, '}')
			if i < 0 {
				continue
			}
			rest = rest[i+1:]
		case rest[0] != ' ':
			continue // another metric whose name starts with this one
		}
		if f := strings.Fields(rest); len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// histogram is a Prometheus histogram read from a text exposition: the
// cumulative count at each upper bound, the sum and the count.
type histogram struct {
	bounds []float64
	cum    []float64
	sum    float64
	count  float64
}

// promHistogram reads the histogram name (all label sets added up).
func promHistogram(text []byte, name string) histogram {
	byBound := map[float64]float64{}
	h := histogram{sum: promSum(text, name+"_sum"), count: promSum(text, name+"_count")}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+"_bucket{")
		if !ok {
			continue
		}
		i := strings.Index(rest, `le="`)
		j := strings.Index(rest, "}")
		if i < 0 || j < i {
			continue
		}
		le, _, _ := strings.Cut(rest[i+4:], `"`)
		bound, err := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
		f := strings.Fields(rest[j+1:])
		if err != nil || len(f) == 0 {
			continue
		}
		v, _ := strconv.ParseFloat(f[0], 64)
		byBound[bound] += v
	}
	for b := range byBound {
		h.bounds = append(h.bounds, b)
	}
	slices.Sort(h.bounds)
	for _, b := range h.bounds {
		h.cum = append(h.cum, byBound[b])
	}
	return h
}

// minus is h with the observations of an earlier reading taken away.
func (h histogram) minus(old histogram) histogram {
	out := histogram{bounds: h.bounds, sum: h.sum - old.sum, count: h.count - old.count}
	for i, b := range h.bounds {
		c := h.cum[i]
		if k := slices.Index(old.bounds, b); k >= 0 {
			c -= old.cum[k]
		}
		out.cum = append(out.cum, c)
	}
	return out
}

// quantile is the upper bound of the bucket holding the q-th observation.
func (h histogram) quantile(q float64) float64 {
	if h.count <= 0 {
		return 0
	}
	for i, c := range h.cum {
		if c >= q*h.count {
			return h.bounds[i]
		}
	}
	return math.Inf(1)
}
