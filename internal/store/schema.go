package store

import (
	"context"
	"fmt"
	"strings"
)

// dialect holds the few differences between SQLite and PostgreSQL. All
// statements are written once with ? placeholders.
type dialect struct {
	name   string
	blob   string // column type for byte strings
	bigint string // column type for 64-bit integers
	seqPK  string // column definition for the history sequence
	// withoutRowid ends a CREATE TABLE whose primary key should be its
	// only b-tree (SQLite; PostgreSQL tables are heaps either way).
	withoutRowid string
	lock         string // row-lock clause for Lease's candidate select
}

var (
	sqliteDialect = dialect{
		name: "sqlite", blob: "BLOB", bigint: "INTEGER",
		seqPK: "seq INTEGER PRIMARY KEY", withoutRowid: " WITHOUT ROWID",
	}
	postgresDialect = dialect{
		name: "postgres", blob: "BYTEA", bigint: "BIGINT",
		seqPK: "seq BIGINT PRIMARY KEY",
		lock:  "FOR UPDATE SKIP LOCKED",
	}
)

func (d dialect) ddl(s string) string {
	return strings.NewReplacer("{{blob}}", d.blob, "{{bigint}}", d.bigint, "{{seqpk}}", d.seqPK,
		"{{withoutrowid}}", d.withoutRowid).Replace(s)
}

// migrations are applied in order; migration i brings the schema to
// version i+1. Never edit a released migration: append a new one.
var migrations = [][]string{
	{
		`CREATE TABLE IF NOT EXISTS dedup (
			id {{blob}} PRIMARY KEY,
			seq {{bigint}} NOT NULL,
			accepted {{bigint}} NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS counters (
			name TEXT PRIMARY KEY,
			v {{bigint}} NOT NULL)`,
		`INSERT INTO counters (name, v) VALUES ('history', 0) ON CONFLICT (name) DO NOTHING`,
		`CREATE TABLE IF NOT EXISTS messages (
			{{seqpk}},
			id {{blob}} NOT NULL UNIQUE,
			channel TEXT NOT NULL,
			origin TEXT NOT NULL,
			originator TEXT NOT NULL,
			precedence INTEGER NOT NULL,
			created {{bigint}} NOT NULL,
			label {{blob}} NOT NULL,
			alternatives {{blob}},
			content_type TEXT NOT NULL,
			body {{blob}} NOT NULL,
			trace_id TEXT NOT NULL,
			accepted {{bigint}} NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS messages_channel ON messages (channel, seq)`,
		`CREATE TABLE IF NOT EXISTS deliveries (
			msg_id {{blob}} NOT NULL,
			peer TEXT NOT NULL,
			state TEXT NOT NULL,
			code TEXT NOT NULL,
			reason TEXT NOT NULL,
			at {{bigint}} NOT NULL,
			PRIMARY KEY (msg_id, peer))`,
		`CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state, peer)`,
		`CREATE TABLE IF NOT EXISTS queue (
			msg_id {{blob}} NOT NULL,
			peer TEXT NOT NULL,
			seq {{bigint}} NOT NULL,
			precedence INTEGER NOT NULL,
			held INTEGER NOT NULL,
			lease_until {{bigint}} NOT NULL,
			PRIMARY KEY (msg_id, peer))`,
		`CREATE INDEX IF NOT EXISTS queue_order ON queue (peer, held, precedence, seq)`,
		`CREATE TABLE IF NOT EXISTS peer_hold (
			peer TEXT PRIMARY KEY,
			held INTEGER NOT NULL,
			reason TEXT NOT NULL,
			at {{bigint}} NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS approvals (
			msg_id {{blob}} NOT NULL,
			peer TEXT NOT NULL,
			reviewer TEXT NOT NULL,
			at {{bigint}} NOT NULL,
			PRIMARY KEY (msg_id, peer, reviewer))`,
		`CREATE TABLE IF NOT EXISTS agreements (
			key TEXT PRIMARY KEY,
			ord {{bigint}} NOT NULL,
			doc {{blob}} NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS cards (
			party TEXT PRIMARY KEY,
			card {{blob}} NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS kv (
			key TEXT PRIMARY KEY,
			val {{blob}} NOT NULL)`,
	},
	{
		// Audit records written in the accepting transaction, until the
		// node has appended them to its audit log.
		`CREATE TABLE IF NOT EXISTS audit_pending (
			seq {{bigint}} NOT NULL,
			n INTEGER NOT NULL,
			record {{blob}} NOT NULL,
			PRIMARY KEY (seq, n))`,
	},
	{
		// The same, as one b-tree on SQLite (no rowid beside the key):
		// every accepting transaction writes here and the pump deletes
		// ranges, so a second b-tree cost pages in each commit.
		`CREATE TABLE audit_pending_v3 (
			seq {{bigint}} NOT NULL,
			n INTEGER NOT NULL,
			record {{blob}} NOT NULL,
			PRIMARY KEY (seq, n)){{withoutrowid}}`,
		`INSERT INTO audit_pending_v3 (seq, n, record) SELECT seq, n, record FROM audit_pending`,
		`DROP TABLE audit_pending`,
		`ALTER TABLE audit_pending_v3 RENAME TO audit_pending`,
	},
	{
		// No statement: from this version on, labels and alternatives
		// are packed at rest (labelpack.go), and a program of an earlier
		// version would take packed values for labels. The version
		// stops it: "schema version 4 is newer than this program's 3".
	},
}

// schemaVersion is the schema version this package writes.
var schemaVersion = len(migrations)

// migrate brings the schema up to date inside tx. It is idempotent. lock,
// if non-empty, is executed first to serialise concurrent migrators.
func migrate(ctx context.Context, q querier, d dialect, lock string) error {
	if lock != "" {
		if _, err := q.exec(ctx, lock); err != nil {
			return fmt.Errorf("lock schema: %w", err)
		}
	}
	if _, err := q.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var v int64
	ok, err := one(ctx, q, `SELECT COALESCE(MAX(version), 0) FROM schema_version`, nil, &v)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if !ok {
		v = 0
	}
	if int(v) > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program's %d", v, len(migrations))
	}
	for i := int(v); i < len(migrations); i++ {
		for _, stmt := range migrations[i] {
			if _, err := q.exec(ctx, d.ddl(stmt)); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		if _, err := q.exec(ctx, `INSERT INTO schema_version (version) VALUES (?)`, int64(i+1)); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	return nil
}
