package fleetlink

import (
	"context"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// serving returns what the device serves of model (from the status
// provider, i.e. the model store and the serving routes), for the final
// update of a job: the fleet checks the version a device actually serves,
// not only the job's state. nil if there is no status provider or the
// model is unknown.
func (l *Link) serving(ctx context.Context, model string) *wire.ModelStatus {
	if l.cfg.Status == nil {
		return nil
	}
	for _, m := range l.cfg.Status.Status(ctx).Models {
		if m.ID == model {
			m := m
			if len(m.Installed) > 64 {
				m.Installed = m.Installed[len(m.Installed)-64:]
			}
			return &m
		}
	}
	return nil
}
