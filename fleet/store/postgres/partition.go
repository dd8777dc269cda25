package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgefleet/edgefleet/fleet/store"
)

// TelemetryBucket is the bucket kept in its own table, partitioned by time:
// the telemetry package's records, whose keys start with the record time as
// 20-digit unix nanoseconds (fleet/telemetry.RecordsBucket).
const TelemetryBucket = "telemetry"

// PartitionsAhead is how many days of telemetry partitions exist beyond
// today (plus yesterday's, for late records).
const PartitionsAhead = 3

const (
	telTable      = "edgefleet_telemetry"
	telDefault    = "edgefleet_telemetry_default"
	telPartPrefix = "edgefleet_telemetry_p"
	telPartLayout = "20060102"
	// maintenanceLockKey serialises partition maintenance across replicas
	// ("edgetel" in ASCII).
	maintenanceLockKey = 0x65646765746c
)

// The records table: declarative range partitions by day on ts (derived
// from the key), plus a DEFAULT partition for records whose day has no
// partition yet (a device clock far ahead, or days before the oldest
// partition). Maintain moves such rows into their day's partition when it
// creates it.
const telSchema = `CREATE TABLE IF NOT EXISTS ` + telTable + ` (
	ts    timestamptz NOT NULL,
	key   text COLLATE "C" NOT NULL,
	value bytea NOT NULL,
	PRIMARY KEY (key, ts)) PARTITION BY RANGE (ts);
CREATE TABLE IF NOT EXISTS ` + telDefault + ` PARTITION OF ` + telTable + ` DEFAULT`

// keyTime is the record time a telemetry key starts with.
func keyTime(key string) (time.Time, error) {
	if len(key) < 20 {
		return time.Time{}, fmt.Errorf("telemetry key %q: want a 20-digit unix-nanosecond prefix", key)
	}
	ns, err := strconv.ParseInt(key[:20], 10, 64)
	if err != nil || ns < 0 {
		return time.Time{}, fmt.Errorf("telemetry key %q: want a 20-digit unix-nanosecond prefix", key)
	}
	return time.Unix(0, ns).UTC(), nil
}

func partName(day time.Time) string { return telPartPrefix + day.Format(telPartLayout) }

// Partition is one day partition of the telemetry table.
type Partition struct {
	Name     string
	From, To time.Time
}

// Partitions lists the day partitions of the telemetry table, oldest first
// (the DEFAULT partition is not listed).
func (s *Store) Partitions(ctx context.Context) ([]Partition, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = '`+telTable+`'::regclass ORDER BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("list telemetry partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list telemetry partitions: %w", err)
	}
	var out []Partition
	for _, n := range names {
		d, ok := strings.CutPrefix(n, telPartPrefix)
		if !ok {
			continue
		}
		day, err := time.Parse(telPartLayout, d)
		if err != nil {
			continue // not ours
		}
		out = append(out, Partition{Name: n, From: day, To: day.AddDate(0, 0, 1)})
	}
	return out, nil
}

// Maintain creates the telemetry partitions from yesterday to
// PartitionsAhead days after now (moving rows of those days out of the
// DEFAULT partition), and, when cut is not zero, applies retention: it
// DROPs every partition that ends at or before cut and deletes the
// DEFAULT partition's rows older than cut (records that never had a
// partition). It returns the number of partitions dropped and default rows
// deleted. Replicas may call it concurrently: an advisory transaction lock
// serialises them.
func (s *Store) Maintain(ctx context.Context, now, cut time.Time) (dropped int, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("telemetry partitions: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(maintenanceLockKey)); err != nil {
		return 0, fmt.Errorf("telemetry partitions: lock: %w", err)
	}
	parts, err := s.Partitions(ctx)
	if err != nil {
		return 0, err
	}
	have := map[string]bool{}
	for _, p := range parts {
		have[p.Name] = true
	}
	today := now.UTC().Truncate(24 * time.Hour)
	for d := -1; d <= PartitionsAhead; d++ {
		day := today.AddDate(0, 0, d)
		if !cut.IsZero() && !day.AddDate(0, 0, 1).After(cut) {
			continue // would be dropped at once
		}
		if have[partName(day)] {
			continue
		}
		if err := createPartition(ctx, tx, day); err != nil {
			return 0, err
		}
	}
	if !cut.IsZero() {
		for _, p := range parts {
			if p.To.After(cut) {
				continue
			}
			if _, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{p.Name}.Sanitize()); err != nil {
				return 0, fmt.Errorf("telemetry retention: drop partition %s: %w", p.Name, err)
			}
			dropped++
		}
		tag, err := tx.Exec(ctx, `DELETE FROM `+telDefault+` WHERE ts < $1`, cut)
		if err != nil {
			return 0, fmt.Errorf("telemetry retention: default partition: %w", err)
		}
		dropped += int(tag.RowsAffected())
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("telemetry partitions: commit: %w", err)
	}
	return dropped, nil
}

// createPartition creates day's partition: a new table filled with the
// DEFAULT partition's rows of that day, then attached (PostgreSQL refuses
// to create a partition whose rows sit in the DEFAULT partition).
func createPartition(ctx context.Context, tx pgx.Tx, day time.Time) error {
	name := pgx.Identifier{partName(day)}.Sanitize()
	from, to := day, day.AddDate(0, 0, 1)
	stmts := []struct {
		sql  string
		args []any
	}{
		{`CREATE TABLE ` + name + ` (LIKE ` + telTable + ` INCLUDING ALL)`, nil},
		// The constraint lets ATTACH skip its validation scan.
		{`ALTER TABLE ` + name + ` ADD CONSTRAINT ` + pgx.Identifier{partName(day) + "_range"}.Sanitize() +
			` CHECK (ts >= '` + from.Format(time.RFC3339) + `' AND ts < '` + to.Format(time.RFC3339) + `')`, nil},
		{`INSERT INTO ` + name + ` SELECT * FROM ` + telDefault + ` WHERE ts >= $1 AND ts < $2`, []any{from, to}},
		{`DELETE FROM ` + telDefault + ` WHERE ts >= $1 AND ts < $2`, []any{from, to}},
		{`ALTER TABLE ` + telTable + ` ATTACH PARTITION ` + name + ` FOR VALUES FROM ('` + from.Format(time.RFC3339) +
			`') TO ('` + to.Format(time.RFC3339) + `')`, nil},
	}
	for _, st := range stmts {
		if _, err := tx.Exec(ctx, st.sql, st.args...); err != nil {
			return fmt.Errorf("telemetry partitions: create %s: %w", partName(day), err)
		}
	}
	return nil
}

// DropRecordsBefore applies telemetry retention by dropping whole day
// partitions (see Maintain; records up to one day older than cut remain
// until their partition ends before cut). It implements
// telemetry.PartitionedStore for bucket TelemetryBucket.
func (s *Store) DropRecordsBefore(ctx context.Context, bucket string, cut time.Time) (int, error) {
	if bucket != TelemetryBucket {
		return 0, fmt.Errorf("postgres store: bucket %q is not partitioned (only %q is)", bucket, TelemetryBucket)
	}
	if cut.IsZero() {
		return 0, errors.New("postgres store: telemetry retention needs a cut-off time")
	}
	return s.Maintain(ctx, time.Now(), cut)
}

// The telemetry bucket's operations inside a transaction.

func (t *pgTx) telGet(key string) ([]byte, error) {
	ts, err := keyTime(key)
	if err != nil {
		return nil, err
	}
	var v []byte
	err = t.tx.QueryRow(t.ctx, `SELECT value FROM `+telTable+` WHERE key = $1 AND ts = $2`, key, ts).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s/%s: %w", TelemetryBucket, key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", TelemetryBucket, key, err)
	}
	return v, nil
}

// telListQuery selects the telemetry rows of a prefix; a prefix of 20
// digits or more also bounds ts, so only the partitions it can touch are
// scanned.
func telListQuery(prefix string) (string, []any) {
	if len(prefix) >= 20 {
		if ts, err := keyTime(prefix); err == nil {
			return `SELECT key, value FROM ` + telTable + ` WHERE ts >= $1 AND key >= $2 ORDER BY key`, []any{ts, prefix}
		}
	}
	return `SELECT key, value FROM ` + telTable + ` WHERE key >= $1 ORDER BY key`, []any{prefix}
}
