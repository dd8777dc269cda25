package server

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// HoldsLeadership reports whether s holds the rollout controller's lock.
func HoldsLeadership(s *Server) bool {
	return s.leader != nil && s.leader.BackendPID() != 0
}

// CrashForTest is the in-process equivalent of kill -9 of replica s:
// PostgreSQL terminates every session of its application name (the
// leader lock dies with its session, open transactions roll back), its
// NATS connection closes without acknowledging the messages it holds
// (NATS redelivers them to another replica), and its MQTT client drops
// without DISCONNECT; then what is left of it is stopped.
func CrashForTest(ctx context.Context, s *Server, adminDSN, appName string) (terminated int, err error) {
	if c := s.nats.Swap(nil); c != nil {
		c.Abort()
	}
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, appName).Scan(&terminated)
	if err != nil {
		return 0, err
	}
	if s.h.mqtt != nil {
		s.h.mqtt.Close()
	}
	s.Close()
	return terminated, nil
}
