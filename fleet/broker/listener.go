package broker

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// DefaultConnectTimeout bounds how long a new connection may take to
// complete its TLS handshake and send its MQTT CONNECT.
const DefaultConnectTimeout = 10 * time.Second

// listener is the embedded broker's TCP listener (a mochi
// listeners.Listener) in place of mochi's own, for two reasons:
//
//   - A connection must finish its TLS handshake and send CONNECT within
//     the connect timeout. mochi sets the first deadline only after
//     CONNECT, so a connection that never spoke held its two goroutines
//     and buffers forever (thousands of idle TCP connections from anyone
//     who can reach the port).
//   - The TLS handshake (certificate parsing and verification, key
//     exchange: deep call chains) runs in a short-lived goroutine; the
//     connection's long-lived reader goroutine starts afterwards and does
//     not inherit a stack grown by the handshake.
type listener struct {
	id      string
	ln      net.Listener
	tls     *tls.Config
	timeout time.Duration
	log     *slog.Logger
	closed  atomic.Bool
}

var _ listeners.Listener = (*listener)(nil)

func (l *listener) Init(log *slog.Logger) error {
	if log != nil {
		l.log = log
	}
	return nil
}

func (l *listener) ID() string       { return l.id }
func (l *listener) Address() string  { return l.ln.Addr().String() }
func (l *listener) Protocol() string { return "tcp" }

// Serve accepts connections until Close. Temporary accept errors (out of
// file descriptors) back off instead of ending the listener.
func (l *listener) Serve(establish listeners.EstablishFn) {
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("mqtt accept failed; retrying", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		go l.handshake(c, establish)
	}
}

// handshake runs in its own short-lived goroutine: it sets the connect
// deadline, completes TLS, and hands the connection to mochi in a fresh
// goroutine (mochi replaces the deadline with the keepalive once CONNECT
// is read).
func (l *listener) handshake(c net.Conn, establish listeners.EstablishFn) {
	if err := c.SetDeadline(time.Now().Add(l.timeout)); err != nil {
		c.Close()
		return
	}
	if l.tls != nil {
		tc := tls.Server(c, l.tls)
		if err := tc.Handshake(); err != nil {
			l.log.Debug("mqtt tls handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			c.Close()
			return
		}
		c = tc
	}
	if l.closed.Load() {
		c.Close()
		return
	}
	go func() {
		if err := establish(l.id, c); err != nil {
			l.log.Debug("mqtt connection ended", "remote", c.RemoteAddr().String(), "err", err)
		}
	}()
}

// Close stops accepting and closes the listener's clients.
func (l *listener) Close(closeClients listeners.CloseFn) {
	if l.closed.CompareAndSwap(false, true) {
		l.ln.Close()
		closeClients(l.id)
	}
}
