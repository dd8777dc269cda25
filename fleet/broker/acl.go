package broker

import (
	"strings"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// Principal is who an MQTT connection authenticated as.
type Principal struct {
	// DeviceID is set for devices.
	DeviceID string
	// Server is true for the fleet server's privileged client.
	Server bool
}

// Authenticator checks MQTT credentials. The fleet server implements it over
// its device registry.
type Authenticator interface {
	// Authenticate returns the principal for username and password, or
	// ok=false when they do not match.
	Authenticate(username, password string) (p Principal, ok bool)
}

// Allowed reports whether p may publish (write=true) to or subscribe to
// topic. Devices get exactly the topics wire.DevicePublishTopics and
// wire.DeviceSubscribeTopics list for their own id, with no wildcards of
// their own; the server gets everything under the fleet root, shared
// subscriptions included.
func Allowed(p Principal, topic string, write bool) bool {
	if p.Server {
		t := topic
		if rest, ok := strings.CutPrefix(t, "$share/"); ok && !write {
			_, t, ok = strings.Cut(rest, "/")
			if !ok {
				return false
			}
		}
		return t == "edgefleet/#" || strings.HasPrefix(t, "edgefleet/")
	}
	if p.DeviceID == "" {
		return false
	}
	patterns := wire.DeviceSubscribeTopics(p.DeviceID)
	if write {
		patterns = wire.DevicePublishTopics(p.DeviceID)
	}
	for _, pat := range patterns {
		if matchLevel(pat, topic) {
			return true
		}
	}
	return false
}

// matchLevel matches topic against pattern where "+" in pattern stands for
// one level that must itself be a valid id (so a device cannot subscribe
// with wildcards or address another device).
func matchLevel(pattern, topic string) bool {
	pl := strings.Split(pattern, "/")
	tl := strings.Split(topic, "/")
	if len(pl) != len(tl) {
		return false
	}
	for i := range pl {
		if pl[i] == "+" {
			if wire.ValidateID("level", tl[i]) != nil {
				return false
			}
			continue
		}
		if pl[i] != tl[i] {
			return false
		}
	}
	return true
}
