// Package pgserver starts and stops a private PostgreSQL server: a throwaway one for a
// test binary, or a persistent one for local development. It needs only the server
// binaries (see FindBinaries), not a system-wide installation or service.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrPortInUse is wrapped by Start when Options.Port is already taken on 127.0.0.1.
var ErrPortInUse = errors.New("port already in use")

const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
	// Superuser created by initdb; trust authentication means no password.
	superuser = "postgres"
	// Leaves room for "/.s.PGSQL.65535" within sun_path (108 bytes on Linux, 104 elsewhere).
	maxSocketDirLen = 80
)

// Options configures Start.
type Options struct {
	// DataDir is the cluster's directory. Empty means a temporary directory that Stop
	// removes. A missing or empty directory is initialised with initdb; one that holds
	// a cluster already is reused, which is how a development database persists.
	DataDir string
	// Port is the TCP port on 127.0.0.1. Zero picks a free one.
	Port int
	// Durable keeps fsync, synchronous_commit and full_page_writes on. Off, a machine
	// crash can corrupt the cluster: no loss for a test server, and much less I/O.
	Durable bool
	// Log receives the server's log. Nil means postgres.log in the data directory.
	Log io.Writer
	// ExtraSettings are server settings (name to value) that override the defaults.
	ExtraSettings map[string]string
}

// Server is a running PostgreSQL server started by Start.
type Server struct {
	port     int
	dataDir  string
	tempData bool
	sockDir  string
	logFile  *os.File
	tail     *tailBuffer

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error // set before exited is closed

	stopOnce sync.Once
	stopErr  error
}

// Start initialises the data directory if needed, starts postgres on 127.0.0.1 and
// returns once it accepts connections (at most about 30 s, or until ctx ends). The
// server trusts every local connection as user "postgres", so it must stay private.
//
// PostgreSQL refuses to run as root. When the caller is root, initdb and postgres run
// as user "postgres" (or "nobody" if there is none); the data directory is handed to
// that user, and any parent directory that user cannot traverse gets the search
// permission for others (x, not r) added.
//
// The server is killed if the calling process dies (Linux), and it runs in its own
// process group, so a Ctrl-C at the terminal reaches only the caller, which is
// expected to call Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	binDir, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("pgserver: invalid port %d", opts.Port)
	}
	if opts.Port != 0 {
		if err := probePort(ctx, opts.Port); err != nil {
			return nil, err
		}
	}

	s := &Server{tail: &tailBuffer{max: 8 << 10}}
	ok := false
	defer func() {
		if !ok {
			_ = s.cleanup()
		}
	}()

	needInit, err := s.prepareDataDir(opts.DataDir)
	if err != nil {
		return nil, err
	}

	cred, err := s.credential()
	if err != nil {
		return nil, err
	}

	if needInit {
		if err := initdb(ctx, binDir, s.dataDir, cred, opts.Durable); err != nil {
			return nil, err
		}
	}
	if err := clearStalePID(s.dataDir); err != nil {
		return nil, err
	}
	if err := s.makeSocketDir(cred); err != nil {
		return nil, err
	}

	var logw io.Writer
	if opts.Log != nil {
		logw = io.MultiWriter(opts.Log, s.tail)
	} else {
		// Opened by us and handed over as a descriptor, so the server user needs no
		// permission on the file.
		s.logFile, err = os.OpenFile(filepath.Join(s.dataDir, "postgres.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("pgserver: %w", err)
		}
		logw = io.MultiWriter(s.logFile, s.tail)
	}

	// A port picked by freePort can be taken by someone else before postgres binds it
	// (test binaries start servers side by side), so a lost race is worth a retry.
	for attempt := 1; ; attempt++ {
		s.tail.reset() // judge each attempt by its own log
		s.port = opts.Port
		if s.port == 0 {
			if s.port, err = freePort(ctx); err != nil {
				return nil, err
			}
		}
		err = s.run(ctx, binDir, cred, logw, opts)
		if err == nil {
			ok = true
			return s, nil
		}
		retry := opts.Port == 0 && attempt < 3 && (errors.Is(err, errNotOurs) || s.lostPortRace())
		if !retry {
			return nil, err
		}
	}
}

// URL returns a connection URL for database dbname as the superuser "postgres".
func (s *Server) URL(dbname string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, dbname)
}

// Port returns the TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// DataDir returns the cluster's data directory.
func (s *Server) DataDir() string { return s.dataDir }

// Done is closed when the server process has exited, whether by Stop or not.
func (s *Server) Done() <-chan struct{} { return s.exited }

// Stop shuts the server down (fast shutdown: sessions are disconnected, nothing is
// lost), waits for it to exit, killing it if that takes more than 30 s, and removes
// the temporary data directory if Start created one. It is safe to call more than
// once; later calls return the first result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		var errs []error
		select {
		case <-s.exited:
			if s.waitErr != nil {
				errs = append(errs, fmt.Errorf("pgserver: postgres had already exited: %w; log tail:\n%s", s.waitErr, s.tail))
			}
		default:
			if err := s.shutdown(); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, s.cleanup())
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// shutdown stops a running server, forcibly if it does not stop in time.
func (s *Server) shutdown() error {
	pid := s.cmd.Process.Pid
	// SIGINT is postgres's fast shutdown; SIGTERM would wait for every client to leave.
	_ = syscall.Kill(pid, syscall.SIGINT)
	select {
	case <-s.exited:
		if s.waitErr != nil {
			return fmt.Errorf("pgserver: postgres shutdown: %w; log tail:\n%s", s.waitErr, s.tail)
		}
		return nil
	case <-time.After(stopTimeout):
		// The whole group: backends must not outlive their postmaster.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.exited
		return fmt.Errorf("pgserver: postgres did not shut down within %s and was killed; log tail:\n%s", stopTimeout, s.tail)
	}
}

// cleanup removes what Start created apart from a caller's data directory.
func (s *Server) cleanup() error {
	var errs []error
	if s.logFile != nil {
		errs = append(errs, s.logFile.Close())
		s.logFile = nil
	}
	if s.sockDir != "" {
		errs = append(errs, os.RemoveAll(s.sockDir))
	}
	if s.tempData && s.dataDir != "" {
		errs = append(errs, os.RemoveAll(s.dataDir))
	}
	return errors.Join(errs...)
}

// prepareDataDir settles s.dataDir and reports whether it still needs initdb.
func (s *Server) prepareDataDir(dir string) (needInit bool, err error) {
	if dir == "" {
		s.dataDir, err = os.MkdirTemp("", "pgserver-")
		if err != nil {
			return false, fmt.Errorf("pgserver: %w", err)
		}
		s.tempData = true
		return true, nil
	}
	if s.dataDir, err = filepath.Abs(dir); err != nil {
		return false, fmt.Errorf("pgserver: %w", err)
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); err == nil {
		return false, nil
	}
	entries, err := os.ReadDir(s.dataDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Parents open to all: a server running as another user must reach the data
		// directory through them.
		if err := os.MkdirAll(filepath.Dir(s.dataDir), 0o755); err != nil {
			return false, fmt.Errorf("pgserver: %w", err)
		}
		if err := os.Mkdir(s.dataDir, 0o700); err != nil {
			return false, fmt.Errorf("pgserver: %w", err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("pgserver: data directory: %w", err)
	case len(entries) > 0:
		return false, fmt.Errorf("pgserver: data directory %s is neither empty nor a PostgreSQL cluster (no PG_VERSION)", s.dataDir)
	}
	return true, nil
}

// credential decides which user the server runs as. Nil means the caller's own.
func (s *Server) credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var uid, gid uint32
	fi, err := os.Stat(s.dataDir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); err == nil && st != nil && st.Uid != 0 {
		// An existing cluster keeps its owner; postgres refuses a data directory
		// owned by anyone but itself.
		uid, gid = st.Uid, st.Gid
	} else {
		if uid, gid, err = unprivilegedUser(); err != nil {
			return nil, err
		}
		if err := chownTree(s.dataDir, uid, gid); err != nil {
			return nil, err
		}
	}
	if err := makeTraversable(s.dataDir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uid, Gid: gid}, nil
}

// makeSocketDir makes a private directory for the Unix socket. Not the data directory:
// its path can be longer than a socket path may be.
func (s *Server) makeSocketDir(cred *syscall.Credential) error {
	var err error
	for _, parent := range []string{os.TempDir(), "/tmp"} {
		if s.sockDir, err = os.MkdirTemp(parent, "pgs-"); err != nil {
			continue
		}
		if len(s.sockDir) <= maxSocketDirLen {
			break
		}
		_ = os.Remove(s.sockDir)
		s.sockDir, err = "", fmt.Errorf("temporary directory %s too long for a socket path", parent)
	}
	if err != nil {
		return fmt.Errorf("pgserver: socket directory: %w", err)
	}
	if cred != nil {
		if err := os.Chown(s.sockDir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		if err := makeTraversable(s.sockDir, cred.Uid, cred.Gid); err != nil {
			return err
		}
	}
	return nil
}

// run starts postgres once and waits until it accepts connections.
func (s *Server) run(ctx context.Context, binDir string, cred *syscall.Credential, logw io.Writer, opts Options) error {
	settings := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"port":                    strconv.Itoa(s.port),
		"unix_socket_directories": s.sockDir,
		// Test binaries open many pools at once.
		"max_connections": "300",
	}
	if !opts.Durable {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	maps.Copy(settings, opts.ExtraSettings)
	args := []string{"-D", s.dataDir}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		args = append(args, "-c", k+"="+settings[k])
	}

	// The server outlives ctx, which bounds only the start-up.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), filepath.Join(binDir, "postgres"), args...)
	cmd.Dir = "/" // the caller's directory may be closed to the server user
	cmd.Stdout = logw
	cmd.Stderr = logw
	cmd.SysProcAttr = sysProcAttr(cred)
	// Backends inherit the log pipe; if the postmaster is killed they hold it open for
	// a moment, and Wait must not hang on them forever.
	cmd.WaitDelay = 5 * time.Second
	s.cmd = cmd
	s.exited = make(chan struct{})
	s.waitErr = nil

	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the thread that forked the child exits,
		// not the process. Go only ends threads whose goroutine exits while locked to
		// them, so the start happens on a thread this goroutine holds until postgres
		// is gone: whatever the caller does with its own thread cannot kill postgres.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("pgserver: start postgres: %w", err)
	}

	if err := s.waitReady(ctx); err != nil {
		select {
		case <-s.exited:
		default:
			_ = s.shutdown()
		}
		return err
	}
	return nil
}

func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		attemptCtx, attemptCancel := context.WithTimeout(ctx, 2*time.Second)
		err := s.ping(attemptCtx)
		attemptCancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, errNotOurs) {
			return fmt.Errorf("pgserver: port %d: %w", s.port, err)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("pgserver: postgres exited during start-up (%w); log tail:\n%s", s.waitErr, s.tail)
		case <-ctx.Done():
			return fmt.Errorf("pgserver: postgres did not accept connections on port %d: %w (last error: %w); log tail:\n%s", s.port, ctx.Err(), err, s.tail)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var errNotOurs = errors.New("another PostgreSQL server answers on this port")

// ping connects once and checks that the server answering is the one we started: if
// ours failed to bind the port, a stranger's server with trust authentication could
// otherwise pass for it.
func (s *Server) ping(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var dataDir string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dataDir); err != nil {
		return err
	}
	if dataDir != s.dataDir {
		return fmt.Errorf("%w (its data directory is %s)", errNotOurs, dataDir)
	}
	return nil
}

// lostPortRace reports whether the last start failed because the port was taken.
func (s *Server) lostPortRace() bool {
	t := s.tail.String()
	return strings.Contains(t, "could not bind") || strings.Contains(t, "Address already in use")
}

func initdb(ctx context.Context, binDir, dataDir string, cred *syscall.Credential, durable bool) error {
	args := []string{"-D", dataDir, "-U", superuser, "--auth=trust", "--encoding=UTF8", "--locale=C"}
	if !durable {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"), args...)
	cmd.Dir = "/"
	cmd.SysProcAttr = sysProcAttr(cred)
	// Interrupted, initdb empties the directory again; killed, it would leave a
	// half-made cluster that the next Start would take for a finished one.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	// Locked for the parent-death signal; see run. Held only while initdb runs,
	// during which this goroutine cannot exit.
	runtime.LockOSThread()
	out, err := cmd.CombinedOutput()
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("pgserver: initdb %s: %w\n%s", dataDir, err, out)
	}
	return nil
}

// clearStalePID removes a postmaster.pid whose process number now belongs to an
// unrelated process, which postgres would take for a running server when the pid is
// owned by the same user. A dead pid is left to postgres: it checks the shared memory
// the file names too, which guards against orphaned backends.
func clearStalePID(dataDir string) error {
	path := filepath.Join(dataDir, "postmaster.pid")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	pid, ok := parsePID(b)
	if !ok {
		return nil // postgres reports a malformed file better than we would
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return nil
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) == "postgres" {
		return fmt.Errorf("pgserver: data directory %s is in use by a running postgres (pid %d); stop it first", dataDir, pid)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("pgserver: remove stale %s: %w", path, err)
	}
	return nil
}

func parsePID(pidFile []byte) (int, bool) {
	first, _, _ := strings.Cut(string(pidFile), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	return pid, err == nil && pid > 0
}

func probePort(ctx context.Context, port int) error {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("pgserver: port %d on 127.0.0.1: %w (%w)", port, ErrPortInUse, err)
	}
	return l.Close()
}

func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgserver: pick a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// unprivilegedUser picks the account to run the server as when we are root.
func unprivilegedUser() (uid, gid uint32, err error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return uint32(uid), uint32(gid), nil
	}
	return 0, 0, errors.New("pgserver: running as root, which PostgreSQL refuses, and there is no user \"postgres\" or \"nobody\" to run it as; create one (useradd --system postgres) or run as a normal user")
}

func chownTree(root string, uid, gid uint32) error {
	err := filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(uid), int(gid))
	})
	if err != nil {
		return fmt.Errorf("pgserver: hand %s to uid %d: %w", root, uid, err)
	}
	return nil
}

// makeTraversable lets uid/gid reach dir by adding search permission for others to
// each parent that would stop them. Search only: nobody gains the right to list.
func makeTraversable(dir string, uid, gid uint32) error {
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		mode := fi.Mode()
		st, _ := fi.Sys().(*syscall.Stat_t)
		canSearch := mode&0o001 != 0 ||
			(st != nil && st.Uid == uid && mode&0o100 != 0) ||
			(st != nil && st.Gid == gid && mode&0o010 != 0)
		if !canSearch {
			if err := os.Chmod(p, mode|0o001); err != nil {
				return fmt.Errorf("pgserver: let uid %d traverse %s: %w", uid, p, err)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// tailBuffer keeps the last bytes of the server log for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = t.buf[:0]
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(t.buf)
	if len(t.buf) == t.max {
		// Cut was mid-line: start at the next whole one.
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return s
}
