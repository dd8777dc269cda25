package rollout

// RowsDecoded is how many rollout device rows the manager's loads have
// decoded so far.
func (m *Manager) RowsDecoded() int64 {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	return m.rows.decoded
}
