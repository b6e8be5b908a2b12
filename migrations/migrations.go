// Package migrations embeds the SQL schemas so that every binary carries them.
//
// Two sets, each with its own golang-migrate version table, because the read side
// may live in another database than the event store (READ_DATABASE_URL).
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed *.sql read/*.sql
var files embed.FS

// EventStore returns the event store's migrations: events, snapshots, idempotency keys.
func EventStore() fs.FS { return files }

// ReadModel returns the projection tables' migrations.
func ReadModel() fs.FS {
	sub, err := fs.Sub(files, "read")
	if err != nil {
		// fs.Sub only fails on an invalid path, and "read" is a constant.
		panic(err)
	}
	return sub
}
