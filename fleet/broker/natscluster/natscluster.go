// Package natscluster runs a NATS server node (github.com/nats-io/nats-server)
// as edgefleet's clustered message plane: JetStream on, an MQTT 3.1.1
// listener for devices, routes to the other nodes of the cluster, and every
// login (MQTT devices, the fleet-server replicas' MQTT and NATS clients)
// checked by a broker.Authenticator, normally the device registry in the
// shared PostgreSQL store, with per-device subject permissions equal to the
// embedded broker's ACL (broker.Allowed).
//
// Device → server messages are QoS 1 MQTT publishes, which the MQTT listener
// writes to its replicated JetStream stream (MQTTStream) before the PUBACK;
// the replicas consume them from there through one shared durable consumer
// (Consume), so each message is handled by exactly one replica and is
// redelivered to another one if the replica handling it dies before
// acknowledging it. Server → device messages are published by the
// replicas over MQTT QoS 1, which the MQTT listener keeps in JetStream for
// offline sessions.
package natscluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/edgefleet/edgefleet/fleet/broker"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// NodeConfig configures one node.
type NodeConfig struct {
	// Name is the node's unique server name in the cluster.
	Name string
	// Cluster is the cluster's name (default "edgefleet").
	Cluster string
	// StoreDir holds the node's JetStream data.
	StoreDir string
	// ClientAddr is the NATS protocol listener (host:port) the fleet-server
	// replicas consume device messages from.
	ClientAddr string
	// MQTTAddr is the MQTT 3.1.1 listener (host:port) for devices and the
	// replicas' MQTT clients.
	MQTTAddr string
	// RouteAddr is this node's cluster (route) listener; Routes are the
	// other nodes' route addresses (host:port). Empty RouteAddr: a single
	// node without clustering.
	RouteAddr string
	Routes    []string
	// RouteUser and RoutePassword authenticate the routes between nodes
	// (required with RouteAddr unless InsecurePlaintext).
	RouteUser, RoutePassword string
	// Replicas is the replication factor of the MQTT listener's JetStream
	// streams (sessions, QoS 1 messages, retained messages); default
	// min(3, nodes), so a clustered node's loss loses no session.
	Replicas int
	// TLS, if set, serves the client, MQTT and route listeners over TLS
	// (routes verify each other with ClientCAs, which must then hold the
	// CA of the nodes' certificates); nil requires InsecurePlaintext.
	TLS *tls.Config
	// InsecurePlaintext allows listeners without TLS (tests, throwaway setups).
	InsecurePlaintext bool
	// MaxConsumers caps the JetStream consumers per stream; every QoS 1
	// MQTT subscription is one on MQTTStream, and a subscription past the
	// cap is refused (SUBACK 0x80). 0: no cap (the fleet needs one per
	// QoS 1 subscription; NATS's own default is 1,000).
	MaxConsumers int
	// Auth checks every client login; a broker.CertAuthenticator is also
	// asked for TLS client certificates.
	Auth broker.Authenticator
	// Logger receives the node's warnings and errors (default slog.Default).
	Logger *slog.Logger
}

// Node is a running NATS server node.
type Node struct {
	srv *server.Server
	cfg NodeConfig
}

func hostPort(what, addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: want host:port: %w", what, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: port: %w", what, addr, err)
	}
	return h, port, nil
}

// Start starts a node and waits until it accepts connections (with routes
// configured, the cluster's JetStream may still be electing its meta
// leader: clients retry).
func Start(cfg NodeConfig) (*Node, error) {
	if cfg.Name == "" || cfg.StoreDir == "" || cfg.Auth == nil {
		return nil, errors.New("nats node: name, store dir and authenticator are required")
	}
	if cfg.TLS == nil && !cfg.InsecurePlaintext {
		return nil, errors.New("nats node: TLS is required (or InsecurePlaintext for tests)")
	}
	if cfg.RouteAddr != "" && cfg.RoutePassword == "" && !cfg.InsecurePlaintext {
		return nil, errors.New("nats node: cluster routes need a route password")
	}
	if cfg.Cluster == "" {
		cfg.Cluster = "edgefleet"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	o := &server.Options{ServerName: cfg.Name, JetStream: true, StoreDir: cfg.StoreDir, NoSigs: true,
		CustomClientAuthentication: &authHook{auth: cfg.Auth},
		// Device payloads (telemetry batches, job lists) stay far below this.
		MaxPayload: 1 << 20}
	// Every QoS 1 MQTT subscription is a JetStream consumer on the MQTT
	// listener's message stream: two per device. The server's default cap
	// of 1,000 consumers per stream made the subscriptions of every device
	// past the 500th fail (no telemetry acks, no job notifications for
	// half of a 1,000-device fleet); the fleet needs one per subscription.
	o.JetStreamLimits.DefaultMaxConsumers = -1
	if cfg.MaxConsumers > 0 {
		o.JetStreamLimits.DefaultMaxConsumers = cfg.MaxConsumers
	}
	var err error
	if o.Host, o.Port, err = hostPort("client address", cfg.ClientAddr); err != nil {
		return nil, fmt.Errorf("nats node %s: %w", cfg.Name, err)
	}
	if o.MQTT.Host, o.MQTT.Port, err = hostPort("MQTT address", cfg.MQTTAddr); err != nil {
		return nil, fmt.Errorf("nats node %s: %w", cfg.Name, err)
	}
	if cfg.TLS != nil {
		o.TLSConfig, o.TLS, o.TLSTimeout = cfg.TLS, true, 5
		o.MQTT.TLSConfig, o.MQTT.TLSTimeout = cfg.TLS, 5
	}
	if cfg.RouteAddr != "" {
		o.Cluster.Name = cfg.Cluster
		if o.Cluster.Host, o.Cluster.Port, err = hostPort("route address", cfg.RouteAddr); err != nil {
			return nil, fmt.Errorf("nats node %s: %w", cfg.Name, err)
		}
		o.Cluster.Username, o.Cluster.Password = cfg.RouteUser, cfg.RoutePassword
		if cfg.TLS != nil {
			// Routes over TLS too: each node presents its certificate and
			// verifies the other's with the same CA (ClientCAs).
			o.Cluster.TLSConfig, o.Cluster.TLSTimeout = routeTLS(cfg.TLS), 5
		}
		if cfg.Replicas <= 0 {
			cfg.Replicas = min(3, len(cfg.Routes)+1)
		}
		o.MQTT.StreamReplicas, o.MQTT.ConsumerReplicas = cfg.Replicas, cfg.Replicas
		for _, r := range cfg.Routes {
			u := &url.URL{Scheme: "nats-route", Host: r}
			if cfg.RoutePassword != "" {
				u.User = url.UserPassword(cfg.RouteUser, cfg.RoutePassword)
			}
			o.Routes = append(o.Routes, u)
		}
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("nats node %s: %w", cfg.Name, err)
	}
	srv.SetLoggerV2(&logger{l: cfg.Logger.With("nats_node", cfg.Name)}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats node %s: not ready after 30 s (ports %s, %s, %s in use?)", cfg.Name, cfg.ClientAddr, cfg.MQTTAddr, cfg.RouteAddr)
	}
	return &Node{srv: srv, cfg: cfg}, nil
}

// ClientURL is the node's NATS URL (nats:// or tls://).
func (n *Node) ClientURL() string {
	if n.cfg.TLS != nil {
		return "tls://" + n.cfg.ClientAddr
	}
	return "nats://" + n.cfg.ClientAddr
}

// MQTTURL is the node's MQTT URL for devices (mqtts:// or mqtt://).
func (n *Node) MQTTURL() string {
	if n.cfg.TLS != nil {
		return "mqtts://" + n.cfg.MQTTAddr
	}
	return "mqtt://" + n.cfg.MQTTAddr
}

// Name is the node's server name.
func (n *Node) Name() string { return n.cfg.Name }

// Routes is the number of routes to other nodes currently up.
func (n *Node) Routes() int { return n.srv.NumRoutes() }

// Close stops the node (its clients are disconnected and reconnect to
// other nodes) and waits until it is down.
func (n *Node) Close() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// routeTLS is the nodes' mutual TLS for routes: both sides present their
// server certificate (issued by the fleet CA for server auth) and verify
// the other's against ClientCAs.
func routeTLS(base *tls.Config) *tls.Config {
	rt := base.Clone()
	if rt.RootCAs == nil {
		rt.RootCAs = rt.ClientCAs
	}
	roots := rt.RootCAs
	rt.ClientAuth = tls.RequireAnyClientCert
	rt.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("route peer presented no certificate")
		}
		leaf, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return fmt.Errorf("route peer certificate: %w", err)
		}
		inter := x509.NewCertPool()
		for _, r := range raw[1:] {
			if c, err := x509.ParseCertificate(r); err == nil {
				inter.AddCert(c)
			}
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			return fmt.Errorf("route peer certificate: %w", err)
		}
		return nil
	}
	return rt
}

// authHook plugs a broker.Authenticator into the NATS server's login.
type authHook struct{ auth broker.Authenticator }

// Check implements server.Authentication.
func (a *authHook) Check(c server.ClientAuthentication) bool {
	if c.Kind() != server.CLIENT {
		return false
	}
	var p broker.Principal
	ok := false
	if st := c.GetTLSConnectionState(); st != nil && len(st.PeerCertificates) > 0 {
		if ca, isCert := a.auth.(broker.CertAuthenticator); isCert {
			p, ok = ca.AuthenticateCert(st.PeerCertificates[0])
		}
	}
	if !ok {
		o := c.GetOpts()
		if o == nil || o.Username == "" {
			return false
		}
		p, ok = a.auth.Authenticate(o.Username, o.Password)
	}
	if !ok {
		return false
	}
	u := &server.User{Username: principalName(p)}
	if !p.Server {
		u.Permissions = DevicePermissions(p.DeviceID)
	}
	c.RegisterUser(u)
	return true
}

func principalName(p broker.Principal) string {
	if p.Server {
		return "fleet-server"
	}
	return p.DeviceID
}

// DevicePermissions are a device's subject permissions: exactly the
// topics broker.Allowed grants it (wire.DevicePublishTopics and
// wire.DeviceSubscribeTopics), as NATS subjects.
func DevicePermissions(id string) *server.Permissions {
	conv := func(topics []string) []string {
		var out []string
		for _, t := range topics {
			out = append(out, TopicToSubject(t))
		}
		return out
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: conv(wire.DevicePublishTopics(id))},
		Subscribe: &server.SubjectPermission{Allow: conv(wire.DeviceSubscribeTopics(id))},
	}
}

// TopicToSubject maps an MQTT topic (or filter) to the NATS subject the
// MQTT listener uses: '.' becomes "//", '/' becomes '.', '+' and '#'
// become '*' and '>'.
func TopicToSubject(topic string) string {
	var b strings.Builder
	for i := 0; i < len(topic); i++ {
		switch c := topic[i]; c {
		case '.':
			b.WriteString("//")
		case '/':
			b.WriteByte('.')
		case '+':
			b.WriteByte('*')
		case '#':
			b.WriteByte('>')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// SubjectToTopic is the inverse of TopicToSubject for concrete subjects.
func SubjectToTopic(subject string) string {
	var b strings.Builder
	for i := 0; i < len(subject); i++ {
		c := subject[i]
		switch {
		case c == '/' && i+1 < len(subject) && subject[i+1] == '/':
			b.WriteByte('.')
			i++
		case c == '.':
			b.WriteByte('/')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// logger adapts the NATS server's logger to slog (warnings and errors;
// notices at debug level).
type logger struct{ l *slog.Logger }

func (g *logger) Noticef(format string, v ...any) { g.l.Debug(fmt.Sprintf(format, v...)) }
func (g *logger) Warnf(format string, v ...any)   { g.l.Warn(fmt.Sprintf(format, v...)) }
func (g *logger) Fatalf(format string, v ...any)  { g.l.Error(fmt.Sprintf(format, v...)) }
func (g *logger) Errorf(format string, v ...any)  { g.l.Error(fmt.Sprintf(format, v...)) }
func (g *logger) Debugf(format string, v ...any)  { g.l.Debug(fmt.Sprintf(format, v...)) }
func (g *logger) Tracef(format string, v ...any)  {}
