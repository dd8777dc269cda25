package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/agent/serving"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/ota"
)

// AddOptions configures ModelsAdd.
type AddOptions struct {
	DataDir, File, ID, Version string
	// Backend checks that the model loads before installing ("" = native;
	// "none" skips the check).
	Backend string
	// NoActivate installs without activating.
	NoActivate bool
	// ProbeTimeout bounds the probe invocation (zero inputs) that proves
	// the model runs (default serving.DefaultProbeTimeout): a model with a
	// never-ending loop is refused instead of installed.
	ProbeTimeout time.Duration
	// Keep is how many versions of the model the store keeps (0:
	// modelstore.DefaultKeep); match the daemon's model_store.keep.
	Keep int
	Out  io.Writer
}

// ModelsAdd installs a model file into the store (the daemon must be
// stopped: the store is locked while it runs) and activates it.
func ModelsAdd(ctx context.Context, o AddOptions) error {
	if o.ID == "" || o.Version == "" {
		return fmt.Errorf("models add: --id and --version are required")
	}
	if o.Backend != "none" {
		name := o.Backend
		if name == "" {
			name = "native"
		}
		b, err := engine.Lookup(name)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(o.File)
		if err != nil {
			return fmt.Errorf("models add: %w", err)
		}
		m, err := b.Load(ctx, data)
		if err != nil {
			return fmt.Errorf("models add %s: the %s backend cannot run it: %w", o.File, name, err)
		}
		err = probe(ctx, m, o.ProbeTimeout)
		m.Close()
		if err != nil {
			return fmt.Errorf("models add %s: %w", o.File, err)
		}
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return fmt.Errorf("models add: %w", err)
	}
	s, err := modelstore.Open(o.DataDir, modelstore.WithKeep(o.Keep))
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Install(ctx, o.ID, o.Version, o.File, ota.ArtifactInfo{Source: "file:" + o.File}); err != nil {
		return err
	}
	if !o.NoActivate {
		if err := s.Activate(ctx, o.ID, o.Version); err != nil {
			return err
		}
	}
	if o.Out != nil {
		state := "installed and active"
		if o.NoActivate {
			state = "installed"
		}
		fmt.Fprintf(o.Out, "%s@%s %s in %s\n", o.ID, o.Version, state, o.DataDir)
	}
	return nil
}

// ModelsList prints the store's models.
func ModelsList(ctx context.Context, dataDir string, out io.Writer) error {
	s, err := modelstore.Open(dataDir)
	if err != nil {
		return err
	}
	defer s.Close()
	models, err := s.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tVERSION\tSTATE\tSIZE\tSHA256\tINSTALLED")
	for _, m := range models {
		for _, v := range m.Versions {
			state := ""
			switch v.Version {
			case m.Active:
				state = "active"
			case m.Previous:
				state = "previous"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.12s\t%s\n", m.ID, v.Version, state, v.Size, v.SHA256, v.InstalledAt.Format("2006-01-02 15:04:05"))
		}
	}
	return tw.Flush()
}

// ModelsActivate activates an installed version.
func ModelsActivate(ctx context.Context, dataDir, id, version string, out io.Writer) error {
	s, err := modelstore.Open(dataDir)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Activate(ctx, id, version); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s@%s active\n", id, version)
	return nil
}

// ModelsRollback re-activates the previous version.
func ModelsRollback(ctx context.Context, dataDir, id string, out io.Writer) error {
	s, err := modelstore.Open(dataDir)
	if err != nil {
		return err
	}
	defer s.Close()
	v, err := s.Rollback(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s rolled back to %s\n", id, v)
	return nil
}

// probe runs one invocation of zero inputs within timeout.
func probe(ctx context.Context, m engine.Model, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = serving.DefaultProbeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := m.NewSession(ctx, 1)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer s.Close()
	var in [][]byte
	for _, t := range m.Inputs() {
		in = append(in, make([]byte, tensor.NumElements(t.Shape)*t.Type.Size()))
	}
	if _, err := s.Run(ctx, 0, in); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("probe: one invocation with zero inputs did not finish within %s (a never-ending loop?): not installed", timeout)
		}
		return fmt.Errorf("probe: one invocation with zero inputs failed: %w", err)
	}
	return nil
}
