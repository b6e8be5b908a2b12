package projection

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/readmodel"
)

// The phases stored in projection_rebuild.phase.
const (
	rebuildLoad  = "load"  // folding in memory; transaction_history rows copied chunk by chunk
	rebuildReady = "ready" // every shadow table complete and indexed at the row's position
)

// rebuildRow is the progress row.
type rebuildRow struct {
	names []string
	phase string
	// pos and done: read and folded up to here (in the load phase, the shadow
	// transaction_history holds the rows up to it; when ready, every shadow table).
	pos  eventlog.Position
	done int64
	// statePos and stateDone: where the fold state was last saved whole (nil: never).
	statePos  *eventlog.Position
	stateDone int64
	startedAt time.Time
}

func readRebuildRow(ctx context.Context, q Queryer) (*rebuildRow, error) {
	rows, err := q.Query(ctx, `SELECT projections, phase, transaction_id, global_position, events_done,
       state_transaction_id, state_global_position, coalesce(state_events_done, 0), started_at
FROM `+RebuildTable)
	if err != nil {
		return nil, fmt.Errorf("read rebuild progress: %w", err)
	}
	r, err := pgx.CollectOneRow(rows, func(row pgx.CollectableRow) (*rebuildRow, error) {
		var (
			r       rebuildRow
			stateTx *uint64
			statePo *int64
		)
		err := row.Scan(&r.names, &r.phase, &r.pos.TransactionID, &r.pos.GlobalPosition, &r.done,
			&stateTx, &statePo, &r.stateDone, &r.startedAt)
		if stateTx != nil && statePo != nil {
			r.statePos = &eventlog.Position{TransactionID: *stateTx, GlobalPosition: *statePo}
		}
		return &r, err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read rebuild progress: %w", err)
	}
	return r, nil
}

// prepare finds the rebuild to resume, or starts a new one, and returns its row.
func (rb *rebuilder) prepare(ctx context.Context) (*rebuildRow, error) {
	names := []string{readmodel.CheckpointTable, RebuildTable}
	for _, p := range All() {
		for _, t := range p.Tables() {
			names = append(names, t.Name)
		}
	}
	for _, n := range names {
		var ok bool
		if err := rb.read.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, n).Scan(&ok); err != nil {
			return nil, fmt.Errorf("rebuild: %w", err)
		}
		if !ok {
			return nil, fmt.Errorf("rebuild: the read database has no table %s: apply the read model's migrations first (MIGRATE_ON_START)", n)
		}
	}
	row, err := readRebuildRow(ctx, rb.read)
	if err != nil {
		return nil, err
	}
	if row != nil {
		why, err := rb.unresumable(ctx, row)
		if err != nil {
			return nil, err
		}
		if why == "" {
			rb.resumed = true
			return row, nil
		}
		rb.log.Info().Strs("projections", row.names).Time("started_at", row.startedAt).Str("reason", why).
			Msg("rebuild: discarding the previous rebuild and starting over")
	}
	return rb.startOver(ctx)
}

// unresumable says why row cannot be resumed ("" if it can).
func (rb *rebuilder) unresumable(ctx context.Context, row *rebuildRow) (string, error) {
	if !slices.Equal(row.names, rb.opts.Projections) {
		return fmt.Sprintf("it rebuilt %s, not %s", strings.Join(row.names, ", "), strings.Join(rb.opts.Projections, ", ")), nil
	}
	if row.phase != rebuildLoad && row.phase != rebuildReady {
		return fmt.Sprintf("unknown phase %q", row.phase), nil
	}
	for _, t := range rb.tables() {
		live, _, err := columnsOf(ctx, rb.read, t.Name)
		if err != nil {
			return "", err
		}
		shadow, ok, err := columnsOf(ctx, rb.read, Shadow(t))
		switch {
		case err != nil:
			return "", err
		case !ok:
			return "table " + Shadow(t) + " is missing", nil
		case live != shadow:
			return fmt.Sprintf("the columns of %s (%s) are not those of %s (%s)", Shadow(t), shadow, t.Name, live), nil
		}
	}
	// Positions that name no event (a store restored, say) cannot be resumed from.
	for _, p := range []*eventlog.Position{&row.pos, row.statePos} {
		if p == nil || p.IsZero() {
			continue
		}
		_, ok, err := rb.tailer.RecordedAt(ctx, *p)
		if err != nil {
			return "", err
		}
		if !ok {
			return fmt.Sprintf("the event store holds no event at %s", *p), nil
		}
	}
	return "", nil
}

// startOver drops any shadow table and progress row, creates empty shadow
// tables and a new progress row, in one transaction.
func (rb *rebuilder) startOver(ctx context.Context) (*rebuildRow, error) {
	// Every projection's shadow goes, not only the named ones': a rebuild of
	// other names left them.
	var shadows []string
	for _, p := range All() {
		for _, t := range p.Tables() {
			shadows = append(shadows, ident(Shadow(t)))
		}
	}
	stmts := []string{
		`DELETE FROM ` + RebuildTable,
		`DROP TABLE IF EXISTS ` + strings.Join(shadows, ", "),
	}
	tables := rb.tables()
	for _, t := range tables {
		n := t.Name
		var opts []string
		if err := rb.read.QueryRow(ctx, `SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = to_regclass($1)`, n).Scan(&opts); err != nil {
			return nil, fmt.Errorf("rebuild: storage options of %s: %w", n, err)
		}
		with := ""
		if len(opts) > 0 {
			for i, o := range opts {
				k, v, _ := strings.Cut(o, "=")
				opts[i] = k + " = " + quoteLiteral(v)
			}
			with = " WITH (" + strings.Join(opts, ", ") + ")"
		}
		// The indexes come later: COPY into a table without them, then one
		// build each, is the fastest way to fill it.
		stmts = append(stmts, `CREATE TABLE `+ident(Shadow(t))+` (LIKE `+ident(n)+` INCLUDING ALL EXCLUDING INDEXES)`+with)
	}
	row := &rebuildRow{names: rb.opts.Projections, phase: rebuildLoad}
	err := pgx.BeginFunc(ctx, rb.read, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, strings.Join(stmts, ";\n")); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO `+RebuildTable+` (projections, phase) VALUES ($1, $2) RETURNING started_at`,
			rb.opts.Projections, rebuildLoad).Scan(&row.startedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("rebuild: create the shadow tables: %w", err)
	}
	if rb.opts.indexesFirst {
		for _, t := range tables {
			if err := rb.buildIndexes(ctx, t.Name, nil); err != nil {
				return nil, err
			}
		}
	}
	return row, nil
}

// columnsOf describes table's columns (name, type, not null), and whether it exists.
func columnsOf(ctx context.Context, q Queryer, table string) (string, bool, error) {
	rows, err := q.Query(ctx, `SELECT to_regclass($1) IS NOT NULL,
       coalesce((SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY attnum)
                 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped), '')`, table)
	if err != nil {
		return "", false, fmt.Errorf("columns of %s: %w", table, err)
	}
	type result struct {
		ok   bool
		cols string
	}
	r, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (result, error) {
		var r result
		err := row.Scan(&r.ok, &r.cols)
		return r, err
	})
	if err != nil {
		return "", false, fmt.Errorf("columns of %s: %w", table, err)
	}
	return r.cols, r.ok, nil
}

// indexDef is an index of a live table.
type indexDef struct {
	name    string
	def     string // pg_get_indexdef
	contype string // the constraint it backs: "p", "u", "x" or ""
}

func liveIndexes(ctx context.Context, q Queryer, table string) ([]indexDef, error) {
	rows, err := q.Query(ctx, `SELECT ci.relname, pg_get_indexdef(i.indexrelid), coalesce(c.contype::text, '')
FROM pg_index i
JOIN pg_class ci ON ci.oid = i.indexrelid
LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')
WHERE i.indrelid = to_regclass($1)
ORDER BY ci.relname`, table)
	if err != nil {
		return nil, fmt.Errorf("indexes of %s: %w", table, err)
	}
	defs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (indexDef, error) {
		var d indexDef
		err := row.Scan(&d.name, &d.def, &d.contype)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("indexes of %s: %w", table, err)
	}
	return defs, nil
}

// shadowIndexName is the name, on the shadow table, of the live index named
// live; the swap renames it back.
func shadowIndexName(live string) string {
	const keep = 63 - len(ShadowSuffix) // NAMEDATALEN-1
	if len(live) > keep {
		live = live[:keep]
	}
	return live + ShadowSuffix
}

// buildIndexes gives the shadow of table every index (and the primary key and
// unique constraints) of the live table, skipping those built already. CREATE
// INDEX CONCURRENTLY: a plain CREATE INDEX holds a transaction id while it
// builds, and so holds every tailing reader of the server back for as long;
// the concurrent build's long steps hold none. progress, when not nil, hears
// of each index before it is built.
func (rb *rebuilder) buildIndexes(ctx context.Context, table string, progress func(name string)) error {
	shadow := table + ShadowSuffix
	defs, err := liveIndexes(ctx, rb.read, table)
	if err != nil {
		return err
	}
	for _, d := range defs {
		name := shadowIndexName(d.name)
		var valid bool
		err := rb.read.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)`, name).Scan(&valid)
		build := errors.Is(err, pgx.ErrNoRows)
		switch {
		case build:
		case err != nil:
			return fmt.Errorf("rebuild: index %s: %w", name, err)
		case !valid: // a concurrent build that failed half-way
			if _, err := rb.read.Exec(ctx, `DROP INDEX `+ident(name)); err != nil {
				return fmt.Errorf("rebuild: drop invalid index %s: %w", name, err)
			}
			build = true
		}
		if build {
			at := strings.Index(d.def, " USING ")
			if at < 0 {
				return fmt.Errorf("rebuild: cannot read the definition of index %s: %s", d.name, d.def)
			}
			unique := ""
			if strings.HasPrefix(d.def, "CREATE UNIQUE INDEX ") {
				unique = "UNIQUE "
			}
			if progress != nil {
				progress(name)
			}
			if _, err := rb.read.Exec(ctx, `CREATE `+unique+`INDEX CONCURRENTLY `+ident(name)+` ON `+ident(shadow)+d.def[at:]); err != nil {
				return fmt.Errorf("rebuild: build index %s: %w", name, err)
			}
		}
		var kind string
		switch d.contype {
		case "":
			continue
		case "p":
			kind = "PRIMARY KEY"
		case "u":
			kind = "UNIQUE"
		default:
			return fmt.Errorf("rebuild: index %s of %s backs an exclusion constraint, which a rebuild cannot copy", d.name, table)
		}
		var has bool
		if err := rb.read.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2)`, shadow, name).Scan(&has); err != nil {
			return fmt.Errorf("rebuild: constraint %s: %w", name, err)
		}
		if !has {
			if _, err := rb.read.Exec(ctx, `ALTER TABLE `+ident(shadow)+` ADD CONSTRAINT `+ident(name)+` `+kind+` USING INDEX `+ident(name)); err != nil {
				return fmt.Errorf("rebuild: constraint %s: %w", name, err)
			}
		}
	}
	return nil
}

// grantsOf returns the GRANT statements that give shadow the privileges
// others hold on table (its owner's are the owner's anyway).
func grantsOf(ctx context.Context, q Queryer, table, shadow string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
       a.privilege_type, a.is_grantable
FROM pg_class c, aclexplode(c.relacl) AS a
WHERE c.oid = to_regclass($1) AND a.grantee <> c.relowner
ORDER BY 1, 2`, table)
	if err != nil {
		return nil, fmt.Errorf("privileges on %s: %w", table, err)
	}
	grants, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
		var (
			grantee, privilege string
			grantable          bool
		)
		if err := row.Scan(&grantee, &privilege, &grantable); err != nil {
			return "", err
		}
		g := `GRANT ` + privilege + ` ON ` + ident(shadow) + ` TO ` + grantee
		if grantable {
			g += ` WITH GRANT OPTION`
		}
		return g, nil
	})
	if err != nil {
		return nil, fmt.Errorf("privileges on %s: %w", table, err)
	}
	return grants, nil
}
