package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Leader elects one process among the replicas sharing a database: the
// holder of a session-level advisory lock on a dedicated connection. The
// lock is released by PostgreSQL when that session ends (process killed,
// connection lost), so a standby takes over at its next Leading call.
type Leader struct {
	s    *Store
	key  int64
	mu   sync.Mutex
	conn *pgxpool.Conn
}

// NewLeader returns an elector for the lock key (one key per role, e.g.
// the rollout controller).
func NewLeader(s *Store, key int64) *Leader { return &Leader{s: s, key: key} }

// Leading reports whether this process holds the lock, trying to take it
// when it does not. A held lock is checked with a ping of its session.
func (l *Leader) Leading(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		if err := l.conn.Ping(ctx); err == nil {
			return true, nil
		}
		// The session is gone and with it the lock.
		l.conn.Conn().Close(context.WithoutCancel(ctx))
		l.conn.Release()
		l.conn = nil
	}
	c, err := l.s.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("leader election: %w", err)
	}
	var ok bool
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, l.key).Scan(&ok); err != nil {
		c.Release()
		return false, fmt.Errorf("leader election: %w", err)
	}
	if !ok {
		c.Release()
		return false, nil
	}
	l.conn = c
	return true, nil
}

// BackendPID is the PostgreSQL backend of the session holding the lock (0
// when not leading); tests terminate it to simulate a crashed leader.
func (l *Leader) BackendPID() uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return 0
	}
	return l.conn.Conn().PgConn().PID()
}

// Resign releases the lock (if held); call it before closing the Store
// (a held lock keeps one pool connection acquired).
func (l *Leader) Resign(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return
	}
	l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, l.key)
	l.conn.Release()
	l.conn = nil
}
