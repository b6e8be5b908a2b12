package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/pgserver"
	"github.com/evbank/bank/internal/readmodel"
	"github.com/evbank/bank/internal/store"
)

// The pgbench scripts. Accounts are numbered 1..2*accounts and account n's id
// is md5(n)::uuid on both sides (accountID), so a script can pick an account
// with \set and PostgreSQL computes its id. The api writes to accounts
// 1..accounts only; the baselines that write take accounts+1..2*accounts, so
// that the api stays the only writer of its accounts, as in production (a
// writer behind its back would make its cached states stale). Reads take the
// api's accounts: the same rows.

// insertScript appends one event to a fresh stream: a valid AccountOpened, so
// that the running projector takes it like any other.
const insertScript = `INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data, metadata)
SELECT id, 'BankAccount', 1, gen_random_uuid(), 'AccountOpened', 2,
       jsonb_build_object('account_id', id, 'owner_id', 'pgbench', 'currency', 'USD', 'opened_at', now()), '{}'
FROM (SELECT gen_random_uuid() AS id) s;
`

// depositScript is a deposit's database work, statement for statement: the
// store's own load query (snapshot and tail in one round trip, outside any
// transaction, as Load runs it), then the next version's INSERT, committed on
// its own as Append's statement is. Each client keeps to its own accounts
// (n = accounts + client_id + 1 modulo clients), so no INSERT loses a race,
// which would abort a pgbench client.
func depositScript() string {
	args := map[string]string{"1": "md5(:n::text)::uuid", "2": ":state_version", "3": "NULL"}
	load := regexp.MustCompile(`\$(\d+)`).ReplaceAllStringFunc(strings.TrimSpace(store.LoadQuery()), func(m string) string {
		return args[m[1:]]
	})
	return `\set n :accounts + 1 + :client_id + :clients * random(0, (:accounts - 1 - :client_id) / :clients)
` + load + ` \aset
INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data, metadata)
VALUES (md5(:n::text)::uuid, 'BankAccount', :version + 1, gen_random_uuid(), 'MoneyDeposited', 2,
        '{"amount_minor": 100, "currency": "USD", "description": ""}',
        '{"causation_id": "0b5e9f0c-6f4e-4a39-9d0c-5d1f64b1c7e2", "correlation_id": "0b5e9f0c-6f4e-4a39-9d0c-5d1f64b1c7e2"}');
`
}

// selectAccountScript reads the row GET /accounts/{id} reads (internal/query GetAccount).
var selectAccountScript = `\set n random(1, :accounts)
SELECT ` + readmodel.AccountBalances.ColumnList() + `
FROM account_balances WHERE account_id = md5(:n::text)::uuid;
`

// selectTransactionsScript reads the first page GET /accounts/{id}/transactions
// reads (internal/query Transactions, limit 50 plus one).
const selectTransactionsScript = `\set n random(1, :accounts)
SELECT a.currency, t.event_id, t.type, t.amount_minor, t.description, t.balance_after_minor, t.version, t.occurred_at
FROM account_balances a
LEFT JOIN LATERAL (
    SELECT event_id, type, amount_minor, description, balance_after_minor, version, occurred_at
    FROM transaction_history h
    WHERE h.account_id = a.account_id AND h.version < 2147483647
    ORDER BY h.version DESC
    LIMIT 51
) t ON true
WHERE a.account_id = md5(:n::text)::uuid
ORDER BY t.version DESC;
`

// findPgbench looks beside the server binaries, then on PATH.
func findPgbench() (string, error) {
	if dir, err := pgserver.FindBinaries(); err == nil {
		if p := filepath.Join(dir, "pgbench"); isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	return "", errors.New("pgbench not found beside the PostgreSQL server binaries or on PATH (Debian: apt-get install postgresql-contrib or postgresql-client)")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// pgbenchRunner runs pgbench against the benchmark's server.
type pgbenchRunner struct {
	bin  string
	port int
	db   string
	dir  string // scripts and per-transaction logs
	vars map[string]string
}

// run runs script with clients connections for warmup+dur (whole seconds) and
// measures the transactions that end after the warmup, from pgbench's
// per-transaction log.
func (p *pgbenchRunner) run(ctx context.Context, mon *monitor, name, script string, clients int, warmup, dur time.Duration) (Stats, error) {
	scriptPath := filepath.Join(p.dir, name+".sql")
	if err := os.WriteFile(scriptPath, []byte(script), 0o644); err != nil {
		return Stats{}, err
	}
	prefix := filepath.Join(p.dir, fmt.Sprintf("%s-c%d", name, clients))
	old, _ := filepath.Glob(prefix + ".*")
	for _, f := range old {
		_ = os.Remove(f)
	}
	secs := int(math.Ceil((warmup + dur).Seconds()))
	args := []string{
		"-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", "postgres",
		"-n", "-M", "prepared", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, runtime.NumCPU())),
		"-T", strconv.Itoa(secs), "-f", scriptPath, "-l", "--log-prefix", prefix,
	}
	for k, v := range p.vars {
		args = append(args, "-D", k+"="+v)
	}
	args = append(args, "-D", "clients="+strconv.Itoa(clients), p.db)
	cmd := exec.CommandContext(ctx, p.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "PGAPPNAME=pgbench")

	if err := cmd.Start(); err != nil {
		return Stats{}, fmt.Errorf("pgbench %s: %w", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pid := cmd.Process.Pid
	cpu := func() float64 { own, _, _, _ := procCPU(pid); return own }

	// The window closes a little before pgbench stops, so that its processes
	// (and its server backends) are all alive at both ends.
	var (
		w        *window
		waitErr  error
		ended    bool
		cpu0     float64
		usage    Usage
		from, to time.Time
	)
	select {
	case waitErr = <-exited:
		ended = true
	case <-time.After(warmup):
		cpu0 = cpu()
		w = mon.begin(ctx)
		from = w.start.at
	}
	if w != nil {
		select {
		case waitErr = <-exited:
			ended = true
		case <-time.After(max(dur-200*time.Millisecond, dur/2)):
		}
		usage = w.end(ctx, cpu()-cpu0)
		to = w.endAt
	}
	if !ended {
		waitErr = <-exited
	}
	if w == nil {
		if waitErr == nil {
			waitErr = errors.New("exit status 0")
		}
		return Stats{}, fmt.Errorf("pgbench %s (%d clients) ended during its warm-up: %w\n%s%s", name, clients, waitErr, stdout.String(), stderr.String())
	}

	rec := newRecorder()
	rec.from, rec.to = from, to
	if err := readPgbenchLogs(prefix, rec); err != nil {
		return Stats{}, err
	}
	st := rec.stats()
	st.Usage = &usage
	if waitErr != nil {
		if st.OK == 0 {
			return st, fmt.Errorf("pgbench %s (%d clients): %w\n%s", name, clients, waitErr, tailLines(stderr.String(), 10))
		}
		// Some clients aborted: report it with the figures of the others.
		if st.ErrorKinds == nil {
			st.ErrorKinds = map[string]int{}
		}
		st.ErrorKinds["pgbench: "+firstLine(stderr.String())]++
	}
	return st, nil
}

// readPgbenchLogs feeds the transactions of the per-transaction logs under
// prefix that end inside rec's window to rec. A line is
// "client_id transaction_no time script_no time_epoch time_us": time is the
// latency in microseconds (or "failed"/"skipped"), time_epoch.time_us its end.
func readPgbenchLogs(prefix string, rec *recorder) error {
	files, _ := filepath.Glob(prefix + ".*")
	if len(files) == 0 {
		return fmt.Errorf("pgbench wrote no transaction log at %s.*", prefix)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			fld := strings.Fields(sc.Text())
			if len(fld) < 6 {
				continue
			}
			sec, err1 := strconv.ParseInt(fld[4], 10, 64)
			usec, err2 := strconv.ParseInt(fld[5], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			var (
				lat  = time.Duration(-1)
				kind string
			)
			if us, err := strconv.ParseInt(fld[2], 10, 64); err == nil {
				lat = time.Duration(us) * time.Microsecond
			} else {
				kind = "pgbench " + fld[2]
			}
			rec.add(time.Unix(sec, usec*1000), lat, kind)
		}
	}
	return nil
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// stateVersion is the snapshot state version the load query asks for.
var stateVersion = strconv.Itoa(domain.SnapshotStateVersion)
