package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edgefleet/edgefleet/fleet/store"
)

// querier is what a pgTx sends its statements through: a pgx.Tx, or a
// View's lazyView.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

const viewBegin = "begin isolation level repeatable read read only"

// View implements store.Store: fn runs in a read-only REPEATABLE READ
// transaction whose BEGIN is sent with its first statement, in one round
// trip (the snapshot is taken at that statement either way), and which
// is not begun at all if fn reads nothing. Every telemetry batch a
// replica handles first checks in a View whether it was stored already:
// BEGIN, the read and COMMIT were three round trips.
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres store: acquire: %w", err)
	}
	defer conn.Release() // a connection left in a transaction is closed, not reused
	v := &lazyView{conn: conn}
	ferr := fn(&pgTx{ctx: ctx, tx: v})
	if !v.begun {
		return ferr
	}
	if ferr != nil {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "rollback"); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
		return ferr
	}
	if _, err := conn.Exec(ctx, "commit"); err != nil {
		return fmt.Errorf("postgres store: commit: %w", err)
	}
	return nil
}

// lazyView begins its transaction with the first statement.
type lazyView struct {
	conn  *pgxpool.Conn
	begun bool
}

// send sends b, preceded by BEGIN if the transaction has not begun, and
// returns its results positioned after the BEGIN.
func (v *lazyView) send(ctx context.Context, b *pgx.Batch) (pgx.BatchResults, error) {
	if v.begun {
		return v.conn.SendBatch(ctx, b), nil
	}
	v.begun = true
	withBegin := &pgx.Batch{}
	withBegin.Queue(viewBegin)
	withBegin.QueuedQueries = append(withBegin.QueuedQueries, b.QueuedQueries...)
	br := v.conn.SendBatch(ctx, withBegin)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, fmt.Errorf("postgres store: begin: %w", err)
	}
	return br, nil
}

func (v *lazyView) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if v.begun {
		return v.conn.QueryRow(ctx, sql, args...)
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br, err := v.send(ctx, b)
	if err != nil {
		return errRow{err}
	}
	return &batchRow{br: br, row: br.QueryRow()}
}

func (v *lazyView) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if v.begun {
		return v.conn.Query(ctx, sql, args...)
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br, err := v.send(ctx, b)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (v *lazyView) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := v.begin(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return v.conn.Exec(ctx, sql, args...)
}

// SendBatch begins first, in its own round trip (views send no batches:
// only a batch transaction buffers writes).
func (v *lazyView) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := v.begin(ctx); err != nil {
		return errBatch{err}
	}
	return v.conn.SendBatch(ctx, b)
}

func (v *lazyView) begin(ctx context.Context) error {
	if v.begun {
		return nil
	}
	v.begun = true
	if _, err := v.conn.Exec(ctx, viewBegin); err != nil {
		return fmt.Errorf("postgres store: begin: %w", err)
	}
	return nil
}

// batchRow is a row of a pipelined batch, closed after Scan.
type batchRow struct {
	br  pgx.BatchResults
	row pgx.Row
}

func (r *batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

// batchRows are the rows of a pipelined batch, closed with them.
type batchRows struct {
	pgx.Rows
	br   pgx.BatchResults
	cerr error
	done bool
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if !r.done {
		r.done = true
		r.cerr = r.br.Close()
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.cerr
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// errBatch is a batch not sent because its transaction did not begin.
type errBatch struct{ err error }

func (b errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.err }
func (b errBatch) Query() (pgx.Rows, error)         { return nil, b.err }
func (b errBatch) QueryRow() pgx.Row                { return errRow{b.err} }
func (b errBatch) Close() error                     { return b.err }
func (b errBatch) Tx() pgx.Tx                       { return nil }
