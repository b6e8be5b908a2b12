package pgserver

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// These tests need the PostgreSQL server binaries and fail, never skip, without them.

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func query(t *testing.T, url, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var out string
	if err := conn.QueryRow(ctx, sql).Scan(&out); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func execSQL(t *testing.T, url, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestTemporaryServer(t *testing.T) {
	t.Parallel()
	var log syncBuffer
	s := startServer(t, Options{Log: &log, ExtraSettings: map[string]string{"application_name": "pgserver_test"}})

	if !strings.HasPrefix(s.URL("postgres"), "postgres://postgres@127.0.0.1:"+strconv.Itoa(s.Port())+"/postgres?") {
		t.Errorf("URL = %s", s.URL("postgres"))
	}
	for setting, want := range map[string]string{
		"fsync":              "off",
		"synchronous_commit": "off",
		"full_page_writes":   "off",
		"max_connections":    "300",
		"listen_addresses":   "127.0.0.1",
		"application_name":   "pgserver_test",
		"server_encoding":    "UTF8",
	} {
		if got := query(t, s.URL("postgres"), "SELECT current_setting('"+setting+"')"); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	if got := query(t, s.URL("postgres"), "SELECT current_user"); got != "postgres" {
		t.Errorf("current_user = %q", got)
	}
	sock := query(t, s.URL("postgres"), "SELECT current_setting('unix_socket_directories')")
	if len(sock) > maxSocketDirLen {
		t.Errorf("socket directory %s is too long", sock)
	}

	dataDir := s.DataDir()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-s.Done():
	default:
		t.Error("Done not closed after Stop")
	}
	for _, dir := range []string{dataDir, sock} {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Stop (err %v)", dir, err)
		}
	}
	if !strings.Contains(log.String(), "ready to accept connections") {
		t.Errorf("log writer did not get the server log:\n%s", log.String())
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestPersistentDataDirSurvivesRestartAndKill(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "nested", "pgdata")

	s := startServer(t, Options{DataDir: dataDir, Durable: true})
	if got := query(t, s.URL("postgres"), "SELECT current_setting('fsync')"); got != "on" {
		t.Errorf("durable server has fsync = %s", got)
	}
	execSQL(t, s.URL("postgres"), "CREATE TABLE kept AS SELECT 'first run'::text AS v")
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	fi, err := os.Stat(dataDir)
	if err != nil {
		t.Fatalf("data dir gone after Stop: %v", err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dataDir, "postgres.log")); err != nil {
		t.Errorf("no default log file: %v", err)
	}

	// A run that is killed leaves postmaster.pid behind; the next start must recover.
	s = startServer(t, Options{DataDir: dataDir, Durable: true})
	if got := query(t, s.URL("postgres"), "SELECT v FROM kept"); got != "first run" {
		t.Errorf("second run reads %q", got)
	}
	if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); err != nil {
		t.Fatalf("expected a stale postmaster.pid: %v", err)
	}

	s = startServer(t, Options{DataDir: dataDir, Durable: true})
	if got := query(t, s.URL("postgres"), "SELECT v FROM kept"); got != "first run" {
		t.Errorf("run after kill reads %q", got)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	// A pid file naming a live process that is not postgres (a recycled pid).
	pidFile := filepath.Join(dataDir, "postmaster.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"+dataDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = startServer(t, Options{DataDir: dataDir, Durable: true})
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func TestDataDirInUse(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "pgdata")
	s := startServer(t, Options{DataDir: dataDir})
	_, err := Start(context.Background(), Options{DataDir: dataDir})
	if err == nil || !strings.Contains(err.Error(), "in use by a running postgres") {
		t.Fatalf("second Start on a live data dir: %v", err)
	}
	// The refused start must not have disturbed the running one.
	query(t, s.URL("postgres"), "SELECT 'still up'")
}

func TestPortInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	_, err = Start(context.Background(), Options{Port: l.Addr().(*net.TCPAddr).Port})
	if !errors.Is(err, ErrPortInUse) {
		t.Fatalf("Start on a busy port: %v, want ErrPortInUse", err)
	}
}

func TestNotADataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "neither empty nor a PostgreSQL cluster") {
		t.Fatalf("Start on a foreign directory: %v", err)
	}
}

// Not parallel: it changes the environment and searchGlobs.
func TestFindBinaries(t *testing.T) {
	empty := t.TempDir()
	saved := searchGlobs
	t.Cleanup(func() { searchGlobs = saved })
	searchGlobs = []string{filepath.Join(empty, "*", "bin")}

	t.Setenv("PG_BIN_DIR", empty)
	t.Setenv("PATH", empty)
	_, err := FindBinaries()
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "PG_BIN_DIR="+empty) {
		t.Errorf("wrong PG_BIN_DIR: %v", err)
	}

	t.Setenv("PG_BIN_DIR", "")
	_, err = FindBinaries()
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("nothing installed: %v", err)
	}
	for _, want := range []string{"PATH (" + empty + ")", searchGlobs[0], "apt-get install postgresql", "PG_BIN_DIR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}

	// Versioned directories: the newest wins, numerically.
	for _, v := range []string{"9.6", "15", "10"} {
		fakeBinaries(t, filepath.Join(empty, v, "bin"))
	}
	if dir, err := FindBinaries(); err != nil || dir != filepath.Join(empty, "15", "bin") {
		t.Errorf("FindBinaries = %s, %v; want the 15 directory", dir, err)
	}

	// PATH comes before the versioned directories.
	onPath := filepath.Join(t.TempDir(), "bin")
	fakeBinaries(t, onPath)
	t.Setenv("PATH", empty+string(filepath.ListSeparator)+onPath)
	if dir, err := FindBinaries(); err != nil || dir != onPath {
		t.Errorf("FindBinaries = %s, %v; want %s from PATH", dir, err, onPath)
	}

	t.Setenv("PG_BIN_DIR", filepath.Join(empty, "10", "bin"))
	if dir, err := FindBinaries(); err != nil || dir != filepath.Join(empty, "10", "bin") {
		t.Errorf("FindBinaries = %s, %v; want PG_BIN_DIR", dir, err)
	}
}

func fakeBinaries(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "postgres"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 16}
	_, _ = tb.Write([]byte("line one\nline two\n"))
	_, _ = tb.Write([]byte("line three\n"))
	if got := tb.String(); got != "line three\n" {
		t.Errorf("tail = %q", got)
	}
}

// syncBuffer is a bytes.Buffer safe to read while the server's log is copied into it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
