package wire_test

import (
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/internal/wire"
)

func TestBrokerAddress(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "mqtt://h:1883", want: "tcp://h:1883"},
		{in: "tcp://h:1", want: "tcp://h:1"},
		{in: "mqtts://h:8883", want: "ssl://h:8883"},
		{in: "ssl://h:8883", want: "ssl://h:8883"},
		{in: "tls://h:8883", want: "ssl://h:8883"},
		{in: "h:1883", err: "want mqtt://host:port"},
		{in: "http://h:80", err: `scheme "http"`},
	}
	for _, tt := range tests {
		got, err := wire.BrokerAddress(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("BrokerAddress(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("BrokerAddress(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
