// Package e2e holds the end-to-end tests: they build the real api, projector
// and devrun binaries once, start a private PostgreSQL (internal/pgtest), run
// the binaries as child processes against fresh databases and talk to them
// through the generated client (client/), as a user or an operator would:
// crashes, fail-over, graceful shutdown, `make run` and the /docs page in a
// headless Chromium included.
//
//	go test -race ./e2e
//
// Under -race the binaries are built with the race detector too, and a data
// race reported by any of them fails the test that ran it.
package e2e
