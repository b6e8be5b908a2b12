package bench

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// wrkScript generates the requests of the closed-loop runs and reports them.
//
//go:embed wrk.lua
var wrkScript []byte

// The closed-loop runs are driven by wrk, a load generator in C: the
// baselines' pgbench spends ~35 µs of CPU per transaction, and a Go HTTP
// client (vegeta, still used for the constant-rate lag run) ~90 µs per
// request, taken from the same two cores as the service it measures.
// Beside wrk the service had about a quarter more throughput.
const wrkMissing = "wrk not found on PATH: the closed-loop HTTP runs need it (Debian: apt-get install wrk; make bench-deps installs it as root)"

// wrkLoad is what a closed-loop run sends.
type wrkLoad struct {
	name    string
	clients int
	mode    string // deposit, transfer or get
	ids     []uuid.UUID
	suffix  string // get: appended to /accounts/{id}
	// profile, when set, names the api CPU profile taken over the measured
	// run (-profile).
	profile string
}

// wrkResult is what wrk.lua prints when wrk is done.
type wrkResult struct {
	DurationUS int64 `json:"duration_us"`
	Requests   int   `json:"requests"`
	Errors     struct {
		Connect, Read, Write, Status, Timeout int
	} `json:"errors"`
	P50US  float64        `json:"p50_us"`
	P95US  float64        `json:"p95_us"`
	P99US  float64        `json:"p99_us"`
	MaxUS  float64        `json:"max_us"`
	MeanUS float64        `json:"mean_us"`
	Kinds  map[string]int `json:"kinds"`
}

// closedLoop runs l: wrk for the warm-up, unmeasured, then wrk again for the
// measured window, with the machine watched meanwhile and wrk's own CPU as
// the load generator's.
func (b *bench) closedLoop(ctx context.Context, l wrkLoad) (Stats, error) {
	if err := b.settle(ctx); err != nil {
		return Stats{}, err
	}
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return Stats{}, errors.New(wrkMissing)
	}
	dir, err := os.MkdirTemp("", "bench-wrk-")
	if err != nil {
		return Stats{}, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	script, idsFile := filepath.Join(dir, "load.lua"), filepath.Join(dir, "ids")
	var ids strings.Builder
	for _, id := range l.ids {
		ids.WriteString(id.String() + "\n")
	}
	if err := os.WriteFile(script, wrkScript, 0o644); err != nil {
		return Stats{}, err
	}
	if err := os.WriteFile(idsFile, []byte(ids.String()), 0o644); err != nil {
		return Stats{}, err
	}
	run := func(d time.Duration) (wrkResult, float64, error) {
		args := []string{
			"-t", strconv.Itoa(min(l.clients, runtime.NumCPU())), "-c", strconv.Itoa(l.clients),
			"-d", fmt.Sprintf("%ds", max(int(math.Round(d.Seconds())), 1)), "--timeout", "30s",
			"-s", script, b.base, "--", l.mode, idsFile, b.token, l.suffix,
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return wrkResult{}, 0, fmt.Errorf("wrk %s: %w\n%s%s", l.name, err, stdout.String(), tailLines(stderr.String(), 10))
		}
		var res wrkResult
		out := stdout.String()
		if err := json.Unmarshal([]byte(out[strings.LastIndex(out, "\n{")+1:]), &res); err != nil {
			return wrkResult{}, 0, fmt.Errorf("wrk %s: reading its report: %w\n%s", l.name, err, out)
		}
		cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		return res, cpu.Seconds(), nil
	}
	if _, _, err := run(b.cfg.Warmup); err != nil {
		return Stats{}, err
	}
	var profiled chan error
	if l.profile != "" {
		// Over the measured run only: started with it, a second shorter.
		profiled = make(chan error, 1)
		go func() { profiled <- b.profileAPI(ctx, l.profile, b.cfg.Duration-time.Second) }()
	}
	w := b.mon.begin(ctx)
	res, cpu, err := run(b.cfg.Duration)
	usage := w.end(ctx, cpu)
	if profiled != nil {
		if perr := <-profiled; perr != nil {
			b.progress("profile %s not taken: %v", l.profile, perr)
		}
	}
	if err != nil {
		return Stats{}, err
	}
	return res.stats(usage), nil
}

// stats turns wrk's report into the run's figures.
func (r wrkResult) stats(u Usage) Stats {
	failed := r.Errors.Status
	s := Stats{Requests: r.Requests, OK: r.Requests - failed, Errors: failed, Usage: &u}
	for k, n := range r.Kinds {
		if s.ErrorKinds == nil {
			s.ErrorKinds = map[string]int{}
		}
		s.ErrorKinds[strings.TrimSpace(k)] += n
	}
	if n := r.Errors.Connect + r.Errors.Read + r.Errors.Write + r.Errors.Timeout; n > 0 {
		if s.ErrorKinds == nil {
			s.ErrorKinds = map[string]int{}
		}
		s.ErrorKinds["transport (connect, read, write, timeout)"] += n
		s.Errors += n
		s.Requests += n
	}
	if r.DurationUS > 0 {
		secs := float64(r.DurationUS) / 1e6
		s.Seconds = round2(secs)
		s.Throughput = round1(float64(s.OK) / secs)
	}
	ms := func(us float64) float64 { return round3(us / 1000) }
	s.P50, s.P95, s.P99, s.Max, s.Mean = ms(r.P50US), ms(r.P95US), ms(r.P99US), ms(r.MaxUS), ms(r.MeanUS)
	return s
}
