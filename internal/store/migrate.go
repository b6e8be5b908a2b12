package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/evbank/bank/internal/dberr"
	"github.com/evbank/bank/migrations"
)

// Schema names one set of migrations and the table that records its version.
type Schema struct {
	Name   string
	Files  func() fs.FS
	Table  string
	Latest uint
}

// The two schemas. Latest is the version a binary expects; /readyz compares against it.
var (
	EventStoreSchema = Schema{Name: "event store", Files: migrations.EventStore, Table: "schema_migrations", Latest: 4}
	ReadModelSchema  = Schema{Name: "read model", Files: migrations.ReadModel, Table: "read_schema_migrations", Latest: 4}
)

// Migrate applies the pending migrations of s to the database at url. golang-migrate
// takes an advisory lock, so api and projector starting together is safe.
func Migrate(url string, s Schema) error {
	m, err := open(url, s)
	if err != nil {
		return err
	}
	defer closeMigrate(m)
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate %s: %w", s.Name, err)
	}
	return nil
}

// MigrateTo moves schema s of the database at url to version, up or down:
// what an upgrade test starts from, or an operator rolling a release back.
func MigrateTo(url string, s Schema, version uint) error {
	m, err := open(url, s)
	if err != nil {
		return err
	}
	defer closeMigrate(m)
	if err := m.Migrate(version); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate %s to version %d: %w", s.Name, version, err)
	}
	return nil
}

// SchemaCurrent checks, through pool, that the database answers and that
// schema s is at the version this binary expects (s.Latest) and not dirty.
// It reads the version table directly rather than open a golang-migrate
// connection, so that a health check costs one query. Errors are
// *dberr.NotReady: in words that name the schema, the cause kept for the log.
func SchemaCurrent(ctx context.Context, pool *pgxpool.Pool, s Schema) error {
	if err := pool.Ping(ctx); err != nil {
		return &dberr.NotReady{Reason: s.Name + " unreachable", Err: err}
	}
	var (
		version int64
		dirty   bool
	)
	if err := pool.QueryRow(ctx, `SELECT version, dirty FROM `+s.Table).Scan(&version, &dirty); err != nil {
		return &dberr.NotReady{Reason: s.Name + " schema version unreadable", Err: err}
	}
	switch {
	case dirty:
		return &dberr.NotReady{Reason: fmt.Sprintf("%s schema at version %d is dirty (a migration failed halfway), want %d", s.Name, version, s.Latest)}
	case uint(version) != s.Latest:
		return &dberr.NotReady{Reason: fmt.Sprintf("%s schema at version %d, want %d", s.Name, version, s.Latest)}
	}
	return nil
}

// closeMigrate closes the migration source and the database driver, whose
// dedicated connection would otherwise stay open (and keep, say, a template
// database busy).
func closeMigrate(m *migrate.Migrate) { _, _ = m.Close() }

func open(url string, s Schema) (*migrate.Migrate, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("migrate %s: open database: %w", s.Name, err)
	}
	driver, err := migratepgx.WithInstance(db, &migratepgx.Config{MigrationsTable: s.Table})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("migrate %s: %w", s.Name, err)
	}
	src, err := iofs.New(s.Files(), ".")
	if err != nil {
		_ = driver.Close()
		return nil, fmt.Errorf("migrate %s: read migrations: %w", s.Name, err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx", driver)
	if err != nil {
		_ = driver.Close()
		return nil, fmt.Errorf("migrate %s: %w", s.Name, err)
	}
	return m, nil
}
