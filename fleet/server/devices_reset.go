package server

import "net/http"

// ResetView answers POST /api/v1/devices/{id}/reset.
type ResetView struct {
	DeviceID string `json:"device_id"`
	Reset    bool   `json:"reset"`
	Message  string `json:"message"`
}

// resetDevice revokes a device's certificate and password, cuts its live
// MQTT session and lets its id enroll again with a token (for a re-flashed
// or replaced device). Admin only.
func (s *Server) resetDevice(w http.ResponseWriter, r *http.Request) (any, error) {
	d, err := s.reg.Devices.Reset(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if err := s.writeMosquitto(r.Context()); err != nil {
		s.log.Error("rewrite mosquitto files", "err", err)
	}
	s.log.Warn("device reset by operator: credentials revoked", "device", d.ID)
	return ResetView{DeviceID: d.ID, Reset: true, Message: "credentials revoked; the device may enroll again with a token"}, nil
}
