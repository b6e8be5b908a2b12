// Package pgtest gives database tests a migrated PostgreSQL database of their own.
//
// A test package calls Main from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Main starts a throwaway server for the package (or uses the one named by
// TEST_DATABASE_URL) and migrates a template database once; NewDatabase then clones
// the template, which is much faster than migrating every test's database.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbank/bank/internal/pgserver"
	"github.com/evbank/bank/internal/store"
)

// EnvURL names the variable that points the tests at an existing server instead of a
// throwaway one. Its user must be allowed to CREATE DATABASE.
const EnvURL = "TEST_DATABASE_URL"

var (
	adminURL *url.URL      // set by Main; nil means Main was not called
	admin    *pgxpool.Pool // connected to adminURL's database
	template string

	// Cloning one template from several sessions at once can fail with "source
	// database is being accessed by other users"; within a process, take turns.
	createMu sync.Mutex
	counter  atomic.Int64
)

// Main runs the package's tests against a fresh template database, cleans up and exits
// with the tests' status. If no server can be had (for instance, PostgreSQL is not
// installed and TEST_DATABASE_URL is unset) it says why and exits non-zero: database
// tests fail rather than skip.
func Main(m *testing.M) {
	os.Exit(run(m))
}

// Run is Main without the exit, for a TestMain with clean-up of its own to do
// after the tests and the server are gone: it returns the exit status.
func Run(m *testing.M) int {
	return run(m)
}

func run(m *testing.M) int {
	teardown, err := setup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 1
	}
	code := m.Run()
	if err := teardown(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// setup connects to or starts the server and builds the template.
func setup() (teardown func() error, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var srv *pgserver.Server
	raw := os.Getenv(EnvURL)
	if raw == "" {
		srv, err = pgserver.Start(ctx, pgserver.Options{})
		if err != nil {
			return nil, fmt.Errorf("cannot start a PostgreSQL server for the tests (or set %s to use an existing one):\n%w", EnvURL, err)
		}
		raw = srv.URL("postgres")
	}
	stopServer := func() error {
		if srv == nil {
			return nil
		}
		return srv.Stop()
	}

	u, err := url.Parse(raw)
	if err == nil && u.Scheme != "postgres" && u.Scheme != "postgresql" {
		err = errors.New("not a postgres:// URL")
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("%s: %w", EnvURL, err), stopServer())
	}
	adminURL = u
	admin, err = pgxpool.New(ctx, raw)
	if err == nil {
		err = admin.Ping(ctx)
	}
	if err != nil {
		closeAdmin()
		return nil, errors.Join(fmt.Errorf("connect to %s: %w", u.Redacted(), err), stopServer())
	}

	name := "bank_template_" + randomSuffix()
	dropTemplate := func() error { return nil }
	if err := func() error {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return fmt.Errorf("create template database: %w", err)
		}
		dropTemplate = func() error { return dropDatabase(name) }
		for _, s := range []store.Schema{store.EventStoreSchema, store.ReadModelSchema} {
			if err := store.Migrate(databaseURL(name), s); err != nil {
				return fmt.Errorf("template database: %w", err)
			}
		}
		// Nothing may connect to the template from now on: a session there would make
		// every clone fail.
		_, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH ALLOW_CONNECTIONS false")
		return err
	}(); err != nil {
		err = errors.Join(err, dropTemplate())
		closeAdmin()
		return nil, errors.Join(err, stopServer())
	}
	template = name

	return func() error {
		err := dropTemplate()
		closeAdmin()
		return errors.Join(err, stopServer())
	}, nil
}

func closeAdmin() {
	if admin != nil {
		admin.Close()
	}
}

// NewDatabase creates a database with both migration sets applied (event store and read
// model) and returns its URL. It is dropped when the test ends. Safe for parallel tests.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, true)
}

// NewEmptyDatabase creates a database with no migrations applied, for instance a
// separate read database, and returns its URL. It is dropped when the test ends.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, false)
}

// Server returns the URL of the server's administrative database ("postgres" on the
// throwaway server, whatever TEST_DATABASE_URL names otherwise), for tests that
// manage databases themselves.
func Server() string {
	if adminURL == nil {
		panic("pgtest: call pgtest.Main(m) from TestMain first")
	}
	return adminURL.String()
}

// NewPool opens a pool on url, checks that it can connect, and closes it when the test
// ends.
func NewPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	return pool
}

func newDatabase(t testing.TB, migrated bool) string {
	t.Helper()
	if adminURL == nil {
		t.Fatal("pgtest: call pgtest.Main(m) from TestMain first")
	}
	name := fmt.Sprintf("test_%d_%s", counter.Add(1), randomSuffix())
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if migrated {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}

	// The mutex covers this process; the retries cover other processes that share a
	// TEST_DATABASE_URL server and clone the same source (template1 for empty ones).
	for attempt := 1; ; attempt++ {
		err := exclusive(sql)
		if err == nil {
			break
		}
		var pgErr *pgconn.PgError
		if attempt == 10 || !errors.As(err, &pgErr) || pgErr.Code != "55006" { // object_in_use
			t.Fatalf("pgtest: create database %s: %v%s", name, err, activity())
		}
		time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
	}
	t.Cleanup(func() {
		if err := dropDatabase(name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return databaseURL(name)
}

// exclusive runs sql under createMu, with a deadline that starts once it is our turn.
func exclusive(sql string) error {
	createMu.Lock()
	defer createMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := admin.Exec(ctx, sql)
	return err
}

// activity describes the server's busy sessions, to explain a CREATE DATABASE that
// timed out or found its template in use.
func activity() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := admin.Query(ctx, `SELECT pid, coalesce(datname, ''), coalesce(state, ''),
		coalesce(wait_event_type || ':' || wait_event, ''), left(query, 100)
		FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`)
	if err != nil {
		return ""
	}
	defer rows.Close()
	var b strings.Builder
	b.WriteString("\nsessions on the server:")
	for rows.Next() {
		var pid int
		var db, state, wait, query string
		if rows.Scan(&pid, &db, &state, &wait, &query) == nil {
			fmt.Fprintf(&b, "\n  pid %d db %s %s %s: %s", pid, db, state, wait, query)
		}
	}
	return b.String()
}

// dropDatabase forces out sessions a test left open (a pool not yet closed, say).
func dropDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

func databaseURL(name string) string {
	u := *adminURL
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// randomSuffix keeps names apart across test binaries sharing one server.
func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// StoppableServer starts a private PostgreSQL server for one test, migrates its
// "postgres" database (event store and read model) and returns that database's
// URL and a stop function, for tests of what the service does when its
// database goes away. The shared server of Main cannot be stopped for that.
// The server is stopped, if still running, when the test ends.
func StoppableServer(t testing.TB) (url string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{})
	if err != nil {
		t.Fatalf("pgtest: start a private server: %v", err)
	}
	stop = func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("pgtest: stop the private server: %v", err)
		}
	}
	t.Cleanup(stop)
	url = srv.URL("postgres")
	for _, s := range []store.Schema{store.EventStoreSchema, store.ReadModelSchema} {
		if err := store.Migrate(url, s); err != nil {
			t.Fatalf("pgtest: private server: %v", err)
		}
	}
	return url, stop
}
