package registry

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// Models are the released model versions.
type Models struct{ base }

// Model is one released version of a model.
type Model struct {
	ID           string      `json:"id"`
	Version      string      `json:"version"`
	Target       wire.Target `json:"target"`
	Ops          []string    `json:"ops,omitempty"`
	Quantization string      `json:"quantization,omitempty"`
	Notes        string      `json:"notes,omitempty"`
	Created      time.Time   `json:"created"`
}

func modelKey(id, version string) string { return id + "/" + version }

// Put stores a released model version; an existing version is an error.
func (r *Models) Put(ctx context.Context, m Model) error {
	if err := wire.ValidateID("model id", m.ID); err != nil {
		return err
	}
	if err := wire.ValidateID("model version", m.Version); err != nil {
		return err
	}
	if m.Created.IsZero() {
		m.Created = r.now()
	}
	return r.s.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Get(bucketModels, modelKey(m.ID, m.Version)); err == nil {
			return fmt.Errorf("model %s version %s already exists", m.ID, m.Version)
		}
		return putJSON(tx, bucketModels, modelKey(m.ID, m.Version), m)
	})
}

// Get returns one model version.
func (r *Models) Get(ctx context.Context, id, version string) (Model, error) {
	var m Model
	err := r.s.View(ctx, func(tx store.Tx) error { return getJSON(tx, bucketModels, modelKey(id, version), &m) })
	if err != nil {
		return Model{}, fmt.Errorf("model %s@%s: %w", id, version, err)
	}
	return m, nil
}

// List lists model versions, all or of one id, ordered by id then creation.
func (r *Models) List(ctx context.Context, id string) ([]Model, error) {
	var out []Model
	prefix := ""
	if id != "" {
		prefix = id + "/"
	}
	err := r.s.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = listJSON[Model](tx, bucketModels, prefix)
		return err
	})
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Created.Before(out[j].Created)
	})
	return out, err
}

// Delete removes a model version from the registry.
func (r *Models) Delete(ctx context.Context, id, version string) error {
	return r.s.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Get(bucketModels, modelKey(id, version)); err != nil {
			return fmt.Errorf("delete model %s@%s: %w", id, version, err)
		}
		return tx.Delete(bucketModels, modelKey(id, version))
	})
}
