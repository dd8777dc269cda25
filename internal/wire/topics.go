package wire

import (
	"fmt"
	"strings"
)

// Version is the payload version carried in every message as "v".
const Version = 1

// TopicRoot is the prefix of every per-device topic.
const TopicRoot = "edgefleet/v1/devices"

// TopicKind names one of the per-device topics.
type TopicKind string

// The per-device topics. Direction is noted as device→server or server→device.
const (
	// KindStatus is edgefleet/v1/devices/{id}/status, device→server, retained,
	// QoS 1; the Last Will publishes an offline Status here.
	KindStatus TopicKind = "status"
	// KindTelemetry is .../telemetry, device→server, QoS 1, a TelemetryBatch.
	KindTelemetry TopicKind = "telemetry"
	// KindTelemetryAck is .../telemetry/ack, server→device, QoS 1, a TelemetryAck.
	KindTelemetryAck TopicKind = "telemetry/ack"
	// KindJobsNotify is .../jobs/notify, server→device, QoS 1, a JobNotify
	// with every pending job of the device.
	KindJobsNotify TopicKind = "jobs/notify"
	// KindJobsGet is .../jobs/get, device→server, QoS 1, a JobsGet asking the
	// server to publish JobNotify again (after a reconnect).
	KindJobsGet TopicKind = "jobs/get"
	// KindJobUpdate is .../jobs/{job}/update, device→server, QoS 1, a JobUpdate.
	KindJobUpdate TopicKind = "jobs/update"
	// KindPredictRequest is .../predict/request, server→device, QoS 1, a
	// PredictRequest (the MQTT half of the agent's streaming mode).
	KindPredictRequest TopicKind = "predict/request"
	// KindPredictResponse is .../predict/response, device→server, QoS 1, a
	// PredictResponse carrying the request's id.
	KindPredictResponse TopicKind = "predict/response"
)

// Server-side subscription filters covering every device.
const (
	StatusFilter    = TopicRoot + "/+/status"
	TelemetryFilter = TopicRoot + "/+/telemetry"
	JobUpdateFilter = TopicRoot + "/+/jobs/+/update"
	JobsGetFilter   = TopicRoot + "/+/jobs/get"
	// PredictResponseFilter matches every device's prediction responses
	// (for a server-side client of the predict topic pair).
	PredictResponseFilter = TopicRoot + "/+/predict/response"
)

// ServerFilters lists every filter the fleet server subscribes to.
func ServerFilters() []string {
	return []string{StatusFilter, TelemetryFilter, JobUpdateFilter, JobsGetFilter}
}

// SharedFilter wraps a filter in an MQTT v5 shared subscription so that
// several fleet-server replicas split the messages between them.
func SharedFilter(group, filter string) string {
	return "$share/" + group + "/" + filter
}

func deviceTopic(id string, rest string) string {
	return TopicRoot + "/" + id + "/" + rest
}

// StatusTopic returns the retained presence/status topic of a device.
func StatusTopic(id string) string { return deviceTopic(id, "status") }

// TelemetryTopic returns the telemetry upload topic of a device.
func TelemetryTopic(id string) string { return deviceTopic(id, "telemetry") }

// TelemetryAckTopic returns the topic on which the server acknowledges telemetry.
func TelemetryAckTopic(id string) string { return deviceTopic(id, "telemetry/ack") }

// JobsNotifyTopic returns the topic on which the server publishes pending jobs.
func JobsNotifyTopic(id string) string { return deviceTopic(id, "jobs/notify") }

// JobsGetTopic returns the topic on which a device asks for its pending jobs.
func JobsGetTopic(id string) string { return deviceTopic(id, "jobs/get") }

// JobUpdateTopic returns the topic on which a device reports progress of one job.
func JobUpdateTopic(id, job string) string { return deviceTopic(id, "jobs/"+job+"/update") }

// PredictRequestTopic returns the topic on which a device receives
// prediction requests.
func PredictRequestTopic(id string) string { return deviceTopic(id, "predict/request") }

// PredictResponseTopic returns the topic on which a device publishes
// prediction responses.
func PredictResponseTopic(id string) string { return deviceTopic(id, "predict/response") }

// DevicePublishTopics lists the exact topics (with "+" for the job id) a
// device may publish to. Brokers enforce this list.
func DevicePublishTopics(id string) []string {
	return []string{StatusTopic(id), TelemetryTopic(id), JobsGetTopic(id), JobUpdateTopic(id, "+"), PredictResponseTopic(id)}
}

// DeviceSubscribeTopics lists the exact topics a device may subscribe to.
func DeviceSubscribeTopics(id string) []string {
	return []string{TelemetryAckTopic(id), JobsNotifyTopic(id), PredictRequestTopic(id)}
}

// Topic is a parsed per-device topic.
type Topic struct {
	DeviceID string
	Kind     TopicKind
	JobID    string // only for KindJobUpdate
}

// ParseTopic splits a per-device topic into device id, kind and job id.
func ParseTopic(topic string) (Topic, error) {
	rest, ok := strings.CutPrefix(topic, TopicRoot+"/")
	if !ok {
		return Topic{}, fmt.Errorf("topic %q: want prefix %q", topic, TopicRoot+"/")
	}
	id, kind, ok := strings.Cut(rest, "/")
	if !ok {
		return Topic{}, fmt.Errorf("topic %q: missing kind after device id", topic)
	}
	if err := ValidateID("device id", id); err != nil {
		return Topic{}, fmt.Errorf("topic %q: %w", topic, err)
	}
	switch TopicKind(kind) {
	case KindStatus, KindTelemetry, KindTelemetryAck, KindJobsNotify, KindJobsGet, KindPredictRequest, KindPredictResponse:
		return Topic{DeviceID: id, Kind: TopicKind(kind)}, nil
	}
	if job, ok := strings.CutPrefix(kind, "jobs/"); ok {
		if job, ok := strings.CutSuffix(job, "/update"); ok {
			if err := ValidateID("job id", job); err != nil {
				return Topic{}, fmt.Errorf("topic %q: %w", topic, err)
			}
			return Topic{DeviceID: id, Kind: KindJobUpdate, JobID: job}, nil
		}
	}
	return Topic{}, fmt.Errorf("topic %q: unknown kind %q (want status, telemetry, telemetry/ack, jobs/notify, jobs/get, jobs/{job}/update, predict/request or predict/response)", topic, kind)
}

// MaxIDLen is the longest device, job, rollout or model id accepted.
const MaxIDLen = 64

// ValidateID checks that s is usable as an id inside a topic and a file
// name: 1..64 characters from [A-Za-z0-9._-], not starting with '.' or '-'.
// what names the id in the error ("device id").
func ValidateID(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > MaxIDLen {
		return fmt.Errorf("%s %.20q... is %d bytes, want at most %d", what, s, len(s), MaxIDLen)
	}
	if s[0] == '.' || s[0] == '-' {
		return fmt.Errorf("%s %q must not start with %q", what, s, s[0])
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%s %q: byte %d (%q) not allowed, want letters, digits, '.', '_' or '-'", what, s, i, c)
		}
	}
	return nil
}
