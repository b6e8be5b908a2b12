// Command devrun runs the service locally for `make run`:
//
//	go run ./tools/devrun bin/api bin/projector
//
// Unless DATABASE_URL is set, it first starts a private PostgreSQL server whose data
// persists in .data/postgres under the working directory (port DEV_PG_PORT, default
// 54329), creates the database "bank" there and points DATABASE_URL at it. It then runs
// each given binary that exists, with the inherited environment and output; unless
// AUTH_MODE is set, with local development auth (AUTH_MODE=jwt over the key and JWKS
// file that internal/devauth keeps in .data/auth, which `make token` signs with). Ctrl-C or
// SIGTERM stops the binaries (SIGTERM, then SIGKILL after 20 s) and then the database.
// Unless NATS_URL is set, it also runs an embedded NATS server with JetStream
// (data in .data/nats, 127.0.0.1 port DEV_NATS_PORT, default 4222) and points
// NATS_URL at it, so that the projector publishes the events (DESIGN §8).
// If a binary exits on its own, devrun stops everything and exits non-zero.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evbank/bank/internal/devauth"
	"github.com/evbank/bank/internal/natsserver"
	"github.com/evbank/bank/internal/pgserver"
)

const (
	defaultPort  = 54329
	defaultNATS  = 4222
	database     = "bank"
	childTimeout = 20 * time.Second
)

func main() {
	// Children get a parent-death signal, which the kernel ties to the thread that
	// started them; the main goroutine's thread lives as long as the process.
	runtime.LockOSThread()
	log.SetFlags(0)
	log.SetPrefix("devrun: ")
	os.Exit(run(os.Args[1:]))
}

type child struct {
	path     string
	cmd      *exec.Cmd
	err      error
	done     chan struct{}
	reported bool
}

func run(paths []string) int {
	if len(paths) == 0 {
		log.Print("usage: devrun BINARY...")
		return 2
	}
	var present []string
	for _, p := range paths {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			log.Printf("skipping %s: not built", p)
			continue
		}
		present = append(present, p)
	}
	if len(present) == 0 {
		log.Print("nothing to run")
		return 1
	}

	// From the start, so that a Ctrl-C during the database's start-up still stops it
	// cleanly instead of killing us with it half-started.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)

	var srv *pgserver.Server
	var srvDone <-chan struct{} // nil (never ready) without our own server
	if os.Getenv("DATABASE_URL") == "" {
		var err error
		if srv, err = startDatabase(sigs); err != nil {
			log.Print(err)
			return 1
		}
		srvDone = srv.Done()
	} else {
		log.Print("using DATABASE_URL from the environment")
	}
	stopDatabase := func() bool {
		if srv == nil {
			return true
		}
		if err := srv.Stop(); err != nil {
			log.Printf("stopping postgres: %v", err)
			return false
		}
		return true
	}

	if err := setupAuth(); err != nil {
		log.Print(err)
		stopDatabase()
		return 1
	}

	stopNATS, err := startNATS()
	if err != nil {
		log.Print(err)
		stopDatabase()
		return 1
	}
	defer stopNATS() // after the children: the projector's publisher goes first

	exited := make(chan *child, len(present))
	var children []*child
	for _, p := range present {
		c := &child{path: p, done: make(chan struct{})}
		c.cmd = exec.Command(p) //nolint:noctx // stopped by signals, in order, by stopChildren
		c.cmd.Stdout = os.Stdout
		c.cmd.Stderr = os.Stderr
		c.cmd.SysProcAttr = childProcAttr()
		if err := c.cmd.Start(); err != nil {
			log.Printf("start %s: %v", p, err)
			stopChildren(children, sigs)
			stopDatabase()
			return 1
		}
		go func() {
			c.err = c.cmd.Wait()
			close(c.done)
			exited <- c
		}()
		children = append(children, c)
	}
	if u := docsURL(os.Getenv("HTTP_ADDR")); u != "" {
		log.Printf("API reference (no token needed): %s", u)
	}

	code := 0
	select {
	case sig := <-sigs:
		log.Printf("%v: stopping", sig)
	case c := <-exited:
		log.Printf("%s exited unexpectedly (%s): stopping", c.path, describe(c.err))
		c.reported = true
		code = 1
	case <-srvDone:
		log.Print("postgres exited unexpectedly: stopping")
		code = 1
	}
	if !stopChildren(children, sigs) {
		code = 1
	}
	if !stopDatabase() {
		code = 1
	}
	return code
}

// startNATS runs the embedded JetStream server and sets NATS_URL for the
// children, unless NATS_URL is set already (then the developer's broker is
// used; an empty NATS_URL turns publishing off).
func startNATS() (stop func(), err error) {
	if v, ok := os.LookupEnv("NATS_URL"); ok {
		log.Printf("using NATS_URL=%q from the environment", v)
		return func() {}, nil
	}
	port := defaultNATS
	if v := os.Getenv("DEV_NATS_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("DEV_NATS_PORT=%q is not a port number", v)
		}
		port = p
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(wd, ".data", "nats")
	s, err := natsserver.Start(dir, "127.0.0.1", port)
	if err != nil {
		return nil, fmt.Errorf("%w (port %d; set DEV_NATS_PORT, or NATS_URL to use another server)", err, port)
	}
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	if err := os.Setenv("NATS_URL", url); err != nil {
		s.Shutdown()
		return nil, err
	}
	log.Printf("NATS JetStream on %s (data in %s): the projector publishes every event to it", url, dir)
	return func() {
		s.Shutdown()
		s.WaitForShutdown()
	}, nil
}

// setupAuth gives the api local development's token check (DESIGN §6): a
// signing key and JWKS file under .data/auth, which `make token` signs with.
// A developer who set AUTH_MODE chose for themselves and is left alone.
func setupAuth() error {
	if os.Getenv("AUTH_MODE") != "" {
		log.Printf("using AUTH_MODE=%s from the environment", os.Getenv("AUTH_MODE"))
		return nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	_, files, err := devauth.Ensure(filepath.Join(wd, ".data"))
	if err != nil {
		return fmt.Errorf("development signing key: %w", err)
	}
	for k, v := range map[string]string{
		"AUTH_MODE":      "jwt",
		"AUTH_JWKS_FILE": files.JWKS,
		"AUTH_JWKS_URL":  "",
		"AUTH_ISSUER":    devauth.Issuer,
		"AUTH_AUDIENCE":  devauth.Audience,
	} {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	log.Printf("bearer tokens required: `make token` prints one (SUB=alice SCOPE=\"bank:read bank:write\"; key %s)", files.Key)
	return nil
}

// startDatabase starts the persistent development server, giving up if a signal
// arrives first.
func startDatabase(sigs <-chan os.Signal) (*pgserver.Server, error) {
	port := defaultPort
	if v := os.Getenv("DEV_PG_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("DEV_PG_PORT=%q is not a port number", v)
		}
		port = p
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(wd, ".data", "postgres")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		srv *pgserver.Server
		err error
	}
	started := make(chan result, 1)
	go func() {
		srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: dataDir, Port: port, Durable: true})
		if err == nil {
			err = createDatabase(ctx, srv)
			if err != nil {
				err = errors.Join(err, srv.Stop())
			}
		}
		started <- result{srv, err}
	}()
	var r result
	select {
	case r = <-started:
	case sig := <-sigs:
		log.Printf("%v: abandoning postgres start-up", sig)
		cancel()
		if r = <-started; r.err == nil {
			r.err = r.srv.Stop()
		}
		if r.err == nil {
			r.err = errors.New("interrupted")
		}
	}
	if errors.Is(r.err, pgserver.ErrPortInUse) {
		return nil, fmt.Errorf("%w\n(another devrun or PostgreSQL on that port? choose another with DEV_PG_PORT)", r.err)
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := os.Setenv("DATABASE_URL", r.srv.URL(database)); err != nil {
		return nil, errors.Join(err, r.srv.Stop())
	}
	log.Printf("postgres data in %s (log: postgres.log there); DATABASE_URL=%s", dataDir, r.srv.URL(database))
	return r.srv, nil
}

func createDatabase(ctx context.Context, srv *pgserver.Server) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, srv.URL("postgres"))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", database).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{database}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", database, err)
	}
	return nil
}

// stopChildren asks the running children to stop and waits for them, killing those
// that take longer than childTimeout or all of them at a second signal. It reports
// whether every child stopped without being killed.
func stopChildren(children []*child, sigs <-chan os.Signal) bool {
	for _, c := range children {
		select {
		case <-c.done:
		default:
			// The group: a child that is a script takes its own children with it, as a
			// terminal's Ctrl-C would have.
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
		}
	}
	deadline := time.NewTimer(childTimeout)
	defer deadline.Stop()
	force, clean := false, true
	for _, c := range children {
		if !force {
			select {
			case <-c.done:
			case <-deadline.C:
				log.Printf("children still running after %s: killing them", childTimeout)
				force = true
			case sig := <-sigs:
				log.Printf("%v again: killing the children", sig)
				force = true
			}
		}
		select {
		case <-c.done:
		default:
			clean = false
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
		if c.err != nil && !c.reported {
			log.Printf("%s: %v", c.path, c.err)
		}
	}
	return clean
}

func describe(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

// docsURL is where the api started by make run serves its reference page,
// given HTTP_ADDR (default :8080); "" when the port is chosen at start.
func docsURL(addr string) string {
	if addr == "" {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/docs"
}
