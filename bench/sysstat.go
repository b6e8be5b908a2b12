package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc.
const clockTicks = 100

// procCPU returns the CPU seconds of pid (user+system) and, with children,
// those of its waited-for children too; ppid is its parent.
func procCPU(pid int) (own, children float64, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, false
	}
	// The command name may hold spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
	if len(f) < 15 {
		return 0, 0, 0, false
	}
	n := func(k int) float64 { v, _ := strconv.ParseFloat(f[k-3], 64); return v / clockTicks }
	ppid, _ = strconv.Atoi(f[1])
	return n(14) + n(15), n(16) + n(17), ppid, true
}

// runQueueWait is how long pid's threads have been runnable but waiting for
// a core, in seconds (the second field of each /proc/<pid>/task/*/schedstat).
// On a saturated machine this, not the work itself, is what stretches a
// latency's tail.
func runQueueWait(pid int) float64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var ns float64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			v, _ := strconv.ParseFloat(f[1], 64)
			ns += v
		}
	}
	return ns / 1e9
}

// treeRunQueueWait is runQueueWait of pid and its live children: for the
// postmaster, every backend of the server.
func treeRunQueueWait(pid int) float64 {
	total := runQueueWait(pid)
	for _, child := range children(pid) {
		total += runQueueWait(child)
	}
	return total
}

// children are the live processes whose parent is pid.
func children(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		if _, _, ppid, ok := procCPU(child); ok && ppid == pid {
			out = append(out, child)
		}
	}
	return out
}

// treeCPU is the CPU seconds used by pid, its live children and every child
// it has reaped: for the postmaster, the whole server, backends that have
// exited included.
func treeCPU(pid int) float64 {
	own, reaped, _, ok := procCPU(pid)
	if !ok {
		return 0
	}
	total := own + reaped
	for _, child := range children(pid) {
		if c, _, _, ok := procCPU(child); ok {
			total += c
		}
	}
	return total
}

// machineCPU reads the aggregate line of /proc/stat: busy, idle and iowait ticks.
func machineCPU() (busy, idle, iowait float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, 0
	}
	var total float64
	for i, s := range f[1:] {
		if i >= 8 { // guest times are already in user and nice
			break
		}
		v, _ := strconv.ParseFloat(s, 64)
		total += v
		switch i {
		case 3:
			idle = v
		case 4:
			iowait = v
		}
	}
	return total - idle - iowait, idle, iowait
}

// postmasterPID reads the server's pid from its data directory.
func postmasterPID(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid
}

// Usage is what the machine did during one measured window.
type Usage struct {
	Seconds float64 `json:"seconds"`
	// CPU of each process as a percentage of one core (200 = both cores of two).
	APICPU       float64 `json:"api_cpu_pct"`
	ProjectorCPU float64 `json:"projector_cpu_pct"`
	PostgresCPU  float64 `json:"postgres_cpu_pct"`
	ClientCPU    float64 `json:"client_cpu_pct"` // the load generator: this program, or pgbench
	// MachineBusy and MachineIOWait are percentages of all cores; OtherCPU is
	// what processes outside the benchmark used (% of one core): the machine
	// may be shared.
	MachineBusy   float64 `json:"machine_busy_pct"`
	MachineIOWait float64 `json:"machine_iowait_pct"`
	OtherCPU      float64 `json:"other_cpu_pct"`
	// WAL activity from pg_stat_wal (flushed by the server about once a second,
	// so approximate over short windows).
	WALSyncs  int64 `json:"wal_syncs"`
	WALBytes  int64 `json:"wal_bytes"`
	WALWrites int64 `json:"wal_writes"`
	// Waits are what active client sessions were doing, sampled every 50 ms:
	// "CPU" is running or waiting for a core.
	Waits []WaitShare `json:"waits"`
	// RunQueue is how long each process's threads together waited for a
	// core, in milliseconds per second of the window (schedstat).
	RunQueue RunQueueWaits `json:"run_queue_ms_per_s"`
	// APIPool is the api's connection pools over the window (pgxpool stats
	// from its /metrics): acquires, how many found no idle connection and
	// waited, and the time spent acquiring.
	APIPool PoolUse `json:"api_pool"`
}

// PoolUse is what the api's pgxpool pools did over a window, all pools added.
type PoolUse struct {
	Acquires       float64 `json:"acquires"`
	Waited         float64 `json:"waited"`
	AcquireSeconds float64 `json:"acquire_seconds"`
}

// RunQueueWaits are the processes' waits for a core, in ms per second.
type RunQueueWaits struct {
	API       float64 `json:"api"`
	Projector float64 `json:"projector"`
	Postgres  float64 `json:"postgres"`
}

// WaitShare is one wait event's share of the samples of active sessions.
type WaitShare struct {
	Who   string  `json:"who"`
	Event string  `json:"event"`
	Share float64 `json:"share_pct"`
}

type snapshot struct {
	at                      time.Time
	api, proj, pg, self     float64
	apiRQ, projRQ, pgRQ     float64 // seconds waiting for a core
	pool                    PoolUse // the api's pools' counters so far
	busy, idle, iowait      float64
	walSync, walBytes, walW int64
}

// monitor takes snapshots of the processes and the server.
type monitor struct {
	pool                   *pgxpool.Pool
	apiPID, projPID, pgPID int
	apiURL                 string // for the api's pool statistics
}

func (m *monitor) snap(ctx context.Context) snapshot {
	s := snapshot{at: time.Now()}
	if own, _, _, ok := procCPU(m.apiPID); ok {
		s.api = own
	}
	if own, _, _, ok := procCPU(m.projPID); ok {
		s.proj = own
	}
	if own, _, _, ok := procCPU(os.Getpid()); ok {
		s.self = own
	}
	s.pg = treeCPU(m.pgPID)
	s.apiRQ, s.projRQ, s.pgRQ = runQueueWait(m.apiPID), runQueueWait(m.projPID), treeRunQueueWait(m.pgPID)
	if m.apiURL != "" {
		if text, err := fetch(ctx, m.apiURL+"/metrics"); err == nil {
			s.pool = PoolUse{
				Acquires: promSum(text, "pgxpool_acquires_total"), Waited: promSum(text, "pgxpool_empty_acquire_waits_total"),
				AcquireSeconds: promSum(text, "pgxpool_acquire_duration_seconds_total"),
			}
		}
	}
	s.busy, s.idle, s.iowait = machineCPU()
	_ = m.pool.QueryRow(ctx, `SELECT wal_sync, wal_bytes::bigint, wal_write FROM pg_stat_wal`).Scan(&s.walSync, &s.walBytes, &s.walW)
	return s
}

// window measures from begin until end.
type window struct {
	m     *monitor
	start snapshot
	endAt time.Time // set by end
	stop  chan struct{}
	done  chan struct{}

	mu      sync.Mutex
	waits   map[[2]string]int
	samples int
}

func (m *monitor) begin(ctx context.Context) *window {
	w := &window{m: m, stop: make(chan struct{}), done: make(chan struct{}), waits: map[[2]string]int{}}
	w.start = m.snap(ctx)
	go w.sample(ctx)
	return w
}

func (w *window) sample(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rows, err := w.m.pool.Query(ctx, `
SELECT coalesce(nullif(application_name, ''), backend_type), coalesce(wait_event_type || ':' || wait_event, 'CPU')
FROM pg_stat_activity
WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()`)
		if err != nil {
			continue
		}
		w.mu.Lock()
		for rows.Next() {
			var who, ev string
			if rows.Scan(&who, &ev) == nil {
				w.waits[[2]string{who, ev}]++
				w.samples++
			}
		}
		w.mu.Unlock()
		rows.Close()
	}
}

// end closes the window. clientCPU, when not negative, replaces this
// program's own CPU as the load generator's (pgbench's, measured by the caller).
func (w *window) end(ctx context.Context, clientCPUSeconds float64) Usage {
	close(w.stop)
	<-w.done
	e := w.m.snap(ctx)
	w.endAt = e.at
	s := w.start
	wall := e.at.Sub(s.at).Seconds()
	pct := func(d float64) float64 { return round1(100 * d / wall) }
	u := Usage{
		Seconds:      round1(wall),
		APICPU:       pct(e.api - s.api),
		ProjectorCPU: pct(e.proj - s.proj),
		PostgresCPU:  pct(e.pg - s.pg),
		ClientCPU:    pct(e.self - s.self),
		WALSyncs:     e.walSync - s.walSync,
		WALBytes:     e.walBytes - s.walBytes,
		WALWrites:    e.walW - s.walW,
		APIPool: PoolUse{
			Acquires: e.pool.Acquires - s.pool.Acquires, Waited: e.pool.Waited - s.pool.Waited,
			AcquireSeconds: round3(e.pool.AcquireSeconds - s.pool.AcquireSeconds),
		},
		RunQueue: RunQueueWaits{
			API: round1(1000 * (e.apiRQ - s.apiRQ) / wall), Projector: round1(1000 * (e.projRQ - s.projRQ) / wall),
			Postgres: round1(1000 * (e.pgRQ - s.pgRQ) / wall),
		},
	}
	if clientCPUSeconds >= 0 {
		u.ClientCPU = pct(clientCPUSeconds)
	}
	if total := (e.busy - s.busy) + (e.idle - s.idle) + (e.iowait - s.iowait); total > 0 {
		u.MachineBusy = round1(100 * (e.busy - s.busy) / total)
		u.MachineIOWait = round1(100 * (e.iowait - s.iowait) / total)
		ours := u.APICPU + u.ProjectorCPU + u.PostgresCPU + u.ClientCPU
		u.OtherCPU = round1(max(u.MachineBusy*float64(runtime.NumCPU())-ours, 0))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, n := range w.waits {
		u.Waits = append(u.Waits, WaitShare{Who: k[0], Event: k[1], Share: round1(100 * float64(n) / float64(w.samples))})
	}
	sort.Slice(u.Waits, func(i, j int) bool {
		if u.Waits[i].Share != u.Waits[j].Share {
			return u.Waits[i].Share > u.Waits[j].Share
		}
		return u.Waits[i].Who+u.Waits[i].Event < u.Waits[j].Who+u.Waits[j].Event
	})
	if len(u.Waits) > 6 {
		u.Waits = u.Waits[:6]
	}
	return u
}

// topWaits formats the first n waits as "who event share%".
func topWaits(ws []WaitShare, n int) string {
	var b strings.Builder
	for i, w := range ws {
		if i == n {
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s %.0f%%", strings.TrimPrefix(w.Who, "bank-"), w.Event, w.Share)
	}
	return b.String()
}

// kernelInfo is the first line of /proc/version, for the report header.
func kernelInfo() string {
	b, err := os.ReadFile("/proc/version")
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Scan()
	f := strings.Fields(sc.Text())
	if len(f) >= 3 {
		return f[0] + " " + f[2]
	}
	return sc.Text()
}
