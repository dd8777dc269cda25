package wire

import (
	"fmt"
	"strings"
)

// BrokerAddress turns a broker URL as the fleet hands it out (mqtt://,
// mqtts://; tcp://, ssl:// and tls:// are accepted too) into the form MQTT
// client libraries dial (tcp://, ssl://).
func BrokerAddress(raw string) (string, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "", fmt.Errorf("broker URL %q: want mqtt://host:port or mqtts://host:port", raw)
	}
	switch scheme {
	case "mqtt", "tcp":
		return "tcp://" + rest, nil
	case "mqtts", "ssl", "tls":
		return "ssl://" + rest, nil
	}
	return "", fmt.Errorf("broker URL %q: scheme %q, want mqtt or mqtts", raw, scheme)
}
