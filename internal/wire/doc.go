// Package wire defines the versioned MQTT and HTTP wire format shared by the
// edge agent and the fleet server: the topic layout under
// edgefleet/v1/devices/{id}/..., the JSON payloads carried on those topics
// (every payload has "v":1), the enrollment request and response, and the
// jobs state machine.
//
// It sits beside agent/ and fleet/ (neither side owns the contract): the
// agent imports nothing under fleet/, and wire depends on the standard
// library alone. Every decoder is strict: unknown fields, a wrong
// version, trailing data, oversized payloads and invalid values are rejected
// with an error naming the payload, the field and what was expected.
package wire
