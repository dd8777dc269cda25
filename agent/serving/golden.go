package serving

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/ota"
)

// GoldenTimeout bounds a golden check's load and invocation: a model that
// never finishes fails the check instead of hanging the install.
const GoldenTimeout = time.Minute

// GoldenCheck returns the ota.GoldenCheck of backend b: it loads the model
// file, runs the golden inputs (model shapes, batch as in the file) and
// compares the sha256 of the concatenated output tensors, within
// GoldenTimeout.
func GoldenCheck(b engine.Backend) ota.GoldenCheck {
	return func(ctx context.Context, modelPath string, g ota.Golden) error {
		ctx, cancel := context.WithTimeout(ctx, GoldenTimeout)
		defer cancel()
		data, err := os.ReadFile(modelPath)
		if err != nil {
			return fmt.Errorf("golden check: %w", err)
		}
		m, err := b.Load(ctx, data)
		if err != nil {
			return fmt.Errorf("golden check: %w", err)
		}
		defer m.Close()
		if len(g.Inputs) == 0 && g.OutputSHA256 == "" {
			return nil // no golden vector: loading is the check
		}
		s, err := m.NewSession(ctx, 1)
		if err != nil {
			return fmt.Errorf("golden check: %w", err)
		}
		defer s.Close()
		out, err := s.Run(ctx, 0, g.Inputs)
		if err != nil {
			return fmt.Errorf("golden check: run: %w", err)
		}
		h := sha256.New()
		for _, o := range out {
			h.Write(o.Data)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != g.OutputSHA256 {
			return fmt.Errorf("golden check: output sha256 %s, release expects %s", got, g.OutputSHA256)
		}
		return nil
	}
}
