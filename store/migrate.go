package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// Migrations are SQL files run by goose, the same files on both engines.
// What SQLite and PostgreSQL spell differently is written as a placeholder
// that dialectFS fills in as goose reads the file:
//
//	{{ID}}       an auto-incrementing 64-bit primary key
//	{{NOROWID}}  WITHOUT ROWID on SQLite (one b-tree for a link table),
//	             nothing on PostgreSQL
//
// migrations/ holds the main database's; migrations/requests/ those of the
// SQLite request log file (see reqlog.go). Applied versions are recorded in
// goose's table, goose_db_version.
//
//go:embed migrations/*.sql migrations/requests/*.sql
var migrationFS embed.FS

// migrationLock is the PostgreSQL advisory lock key that serialises the
// migrations of replicas starting at once (the hand-written runner before
// goose took the same key, so old and new replicas also wait for each
// other).
const migrationLock = 7270001

// legacyTable is where the hand-written runner recorded applied versions.
const legacyTable = "schema_migrations"

func dialectOf(engine string) goose.Dialect {
	if engine == Postgres {
		return goose.DialectPostgres
	}
	return goose.DialectSQLite3
}

// migrations returns a migration set (a folder of migrationFS) as engine
// spells it.
func migrations(engine, dir string) (fs.FS, error) {
	sub, err := fs.Sub(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	r := strings.NewReplacer("{{ID}}", "INTEGER PRIMARY KEY AUTOINCREMENT", "{{NOROWID}}", "WITHOUT ROWID")
	if engine == Postgres {
		r = strings.NewReplacer("{{ID}}", "BIGSERIAL PRIMARY KEY", "{{NOROWID}}", "")
	}
	return dialectFS{FS: sub, r: r}, nil
}

// dialectFS serves migration files with the placeholders filled in.
type dialectFS struct {
	fs.FS
	r *strings.Replacer
}

func (d dialectFS) Open(name string) (fs.File, error) {
	f, err := d.FS.Open(name)
	if err != nil || path.Ext(name) != ".sql" {
		return f, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	text := d.r.Replace(string(raw))
	return &sqlFile{Reader: strings.NewReader(text), info: sizedInfo{FileInfo: info, size: int64(len(text))}}, nil
}

type sqlFile struct {
	*strings.Reader
	info fs.FileInfo
}

func (f *sqlFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *sqlFile) Close() error               { return nil }

type sizedInfo struct {
	fs.FileInfo
	size int64
}

func (i sizedInfo) Size() int64 { return i.size }

// migrate brings the main database to the latest version.
func (s *Store) migrate(ctx context.Context) error {
	if s.engine == SQLite {
		// WAL must be set before the read pool opens the file read-only.
		if _, err := s.w.ExecContext(ctx, "PRAGMA journal_mode=WAL"); err != nil {
			return err
		}
	} else {
		unlock, err := lockMigrations(ctx, s.w)
		if err != nil {
			return err
		}
		defer unlock()
	}
	if err := adoptLegacy(ctx, s.w, s.engine); err != nil {
		return fmt.Errorf("adopt %s: %w", legacyTable, err)
	}
	return migrateTo(ctx, s.w, s.engine, "migrations", 0)
}

// migrateTo runs a migration set on db up to version (0: the latest). On
// PostgreSQL the caller holds the migration lock; on SQLite db has the one
// writing connection.
func migrateTo(ctx context.Context, db *sql.DB, engine, dir string, version int64) error {
	fsys, err := migrations(engine, dir)
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(dialectOf(engine), db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	if version > 0 {
		_, err = p.UpTo(ctx, version)
	} else {
		_, err = p.Up(ctx)
	}
	return err
}

// lockMigrations takes PostgreSQL's migration lock on a connection of its
// own, waiting for another replica's migrations to finish, and returns
// what releases it.
func lockMigrations(ctx context.Context, db *sql.DB) (unlock func(), err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock migrations: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lock migrations: %w", err)
	}
	return func() {
		// A failed unlock ends with the session: closing the connection
		// instead of returning it to the pool releases the lock.
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}, nil
}

// adoptLegacy converts the bookkeeping of the hand-written runner that came
// before goose: a database that has its schema_migrations table and no
// goose table gets goose's table with the same versions applied, and loses
// the old table, in one transaction. Its migration files are the ones goose
// runs now, so the schema is what they describe.
func adoptLegacy(ctx context.Context, db *sql.DB, engine string) error {
	if legacy, err := tableExists(ctx, db, engine, legacyTable); err != nil || !legacy {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if adopted, err := tableExists(ctx, tx, engine, goose.DefaultTablename); err != nil {
		return err
	} else if adopted {
		return fmt.Errorf("both %s and %s exist: the database was migrated by both runners", legacyTable, goose.DefaultTablename)
	}
	rows, err := tx.QueryContext(ctx, "SELECT version FROM "+legacyTable+" ORDER BY version")
	if err != nil {
		return err
	}
	var versions []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		versions = append(versions, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	gs, err := database.NewStore(dialectOf(engine), goose.DefaultTablename)
	if err != nil {
		return err
	}
	if err := gs.CreateVersionTable(ctx, tx); err != nil {
		return err
	}
	for _, v := range append([]int64{0}, versions...) {
		if err := gs.Insert(ctx, tx, database.InsertRequest{Version: v}); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, "DROP TABLE "+legacyTable); err != nil {
		return err
	}
	return tx.Commit()
}

// tableExists says whether the current schema has a table of that name.
func tableExists(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, engine, name string) (bool, error) {
	query := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
	if engine == Postgres {
		query = "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1"
	}
	var n int
	err := q.QueryRowContext(ctx, query, name).Scan(&n)
	return n > 0, err
}
