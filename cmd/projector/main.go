// Command projector keeps the read tables (account_balances,
// transaction_history, daily_summaries) up to date from the event store.
//
// Usage:
//
//	projector          tail the event store and apply it; serve /healthz, /readyz
//	                   and /metrics on PROJECTOR_ADDR. Of several instances one is
//	                   active, the others stand by and take over.
//	projector verify   compare every read table with a fresh fold of the event
//	                   store; exit 2 naming the accounts that drifted. Listens on
//	                   no address; safe beside a live projector.
//	projector rebuild [name...]
//	                   rebuild the named projections (default all) from the
//	                   start of the event store into new tables while the old
//	                   ones serve and the live projector runs, then swap them
//	                   in. Listens on no address; exit 3 when interrupted,
//	                   and run again, it resumes.
//	projector -h       list the environment variables
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "projector:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// exitError asks main for a particular exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
