package registry

import (
	"context"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// Groups are named label selectors.
type Groups struct{ base }

// Put stores a named label selector.
func (r *Groups) Put(ctx context.Context, name string, sel Selector) error {
	if err := wire.ValidateID("group name", name); err != nil {
		return err
	}
	return r.s.Update(ctx, func(tx store.Tx) error { return tx.Put(bucketGroups, name, []byte(sel.String())) })
}

// List returns every group's selector by name.
func (r *Groups) List(ctx context.Context) (map[string]Selector, error) {
	out := map[string]Selector{}
	err := r.s.View(ctx, func(tx store.Tx) error {
		return tx.List(bucketGroups, "", func(k string, v []byte) error {
			s, err := ParseSelector(string(v))
			out[k] = s
			return err
		})
	})
	return out, err
}
