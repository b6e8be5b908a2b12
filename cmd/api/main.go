// Command api serves the bank-account HTTP API: commands appended to the event
// store, queries answered from the projection tables.
//
// Usage:
//
//	api            serve on HTTP_ADDR
//	api migrate    apply the database migrations and exit
//	api healthcheck  exit 0 when the local /healthz answers (for container health checks)
//	api -h         list the environment variables
package main

import (
	"context"
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
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}
