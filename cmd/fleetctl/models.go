package main

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/fleet/modelrel"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

func newModelsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "models", Short: "Release and list models"}
	var o modelrel.Options
	var refStats string
	var progress bool
	push := &cobra.Command{
		Use:   "push MODEL.tflite --id NAME --version V [--hardware edgetpu|gpu|...]",
		Short: "Inspect a model with the runtime, sign it into the TUF repository and register it",
		Long: `Without --hardware (or with --hardware cpu) the file is the version's primary
file: inspected, golden-tested with the runtime, signed into the repository
and registered with fleet-server. With --hardware edgetpu (gpu, ...) it is
added as a per-hardware variant of a version already pushed this way
(models/<id>/<version>/model_<hardware>.tflite, see docs/acceleration.md):
signed into the repository only, without a golden vector; devices that run
that variant install it instead of the primary file. An Edge TPU-compiled
model must be pushed with --hardware edgetpu.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if errOut := cmd.ErrOrStderr(); progress || isTerminal(errOut) {
				o.Progress = func(step string) { fmt.Fprintf(errOut, "models push: %s\n", step) }
			}
			if o.Hardware != "" && o.Hardware != "cpu" {
				m, ins, err := modelrel.PushVariant(cmd.Context(), args[0], o)
				if err != nil {
					return err
				}
				return g.print(map[string]any{"variant": m, "hardware": o.Hardware, "inspection": ins}, func() {
					fmt.Printf("released the %s variant of %s@%s: %d bytes, %d ops (%s)\n  target %s sha256 %s\n", o.Hardware, m.ID, m.Version,
						m.Target.Length, len(ins.Ops), strings.Join(ins.Ops, ","), m.Target.Name, m.Target.SHA256)
				})
			}
			var ref *wire.Monitoring
			if refStats != "" { // checked before anything is released
				b, err := os.ReadFile(refStats)
				if err != nil {
					return fmt.Errorf("--reference-stats: %w", err)
				}
				if ref, err = wire.DecodeMonitoring(b); err != nil {
					return fmt.Errorf("--reference-stats %s: %w (format: docs/monitoring.md)", refStats, err)
				}
			}
			m, ins, err := modelrel.Push(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			out, err := g.client().AddModel(cmd.Context(), m)
			if err != nil {
				return err
			}
			if ref != nil {
				if err := g.client().Do(cmd.Context(), "PUT", "/api/v1/models/"+url.PathEscape(out.ID)+"/"+url.PathEscape(out.Version)+"/reference", ref, nil); err != nil {
					return fmt.Errorf("released %s@%s but its reference stats were refused: %w", out.ID, out.Version, err)
				}
			}
			return g.print(map[string]any{"model": out, "inspection": ins, "reference_stats": ref != nil}, func() {
				fmt.Printf("released %s@%s: %d bytes, %s, %d ops (%s)\n  target %s sha256 %s\n", out.ID, out.Version, out.Target.Length,
					ins.Quantization, len(ins.Ops), strings.Join(ins.Ops, ","), out.Target.Name, out.Target.SHA256)
				if ref != nil {
					fmt.Printf("  reference stats from %s (drift reference of this version)\n", refStats)
				}
			})
		},
	}
	f := push.Flags()
	f.StringVar(&o.ID, "id", "", "model id")
	f.StringVar(&o.Version, "version", "", "version")
	f.StringVar(&o.KeysDir, "keys-dir", "./fleet-keys", "keys from fleetctl keys init")
	f.StringVar(&o.RepoDir, "repo-dir", "./fleet-data/repo", "the repository fleet-server serves")
	f.StringVar(&o.Hardware, "hardware", "cpu", "hardware variant: cpu is the primary file; edgetpu, gpu, ... add a variant to a pushed version")
	f.StringVar(&o.GoldenOutputSHA256, "golden-output-sha256", "", "expected golden output hash (default: computed with the runtime)")
	f.BoolVar(&o.CorruptGolden, "corrupt-golden", false, "publish a wrong golden hash so devices reject the release (rollback drills)")
	f.StringVar(&o.Notes, "notes", "", "release notes")
	f.BoolVar(&progress, "progress", false, "print each step (inspect, golden check, sign) even when stderr is not a terminal")
	f.StringVar(&refStats, "reference-stats", "", "JSON file of reference distributions (a telemetry 'monitoring' object, docs/monitoring.md): the version's drift reference")
	push.MarkFlagRequired("id")
	push.MarkFlagRequired("version")

	list := &cobra.Command{
		Use: "list", Short: "List model versions", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ms, err := g.client().Models(cmd.Context(), "")
			if err != nil {
				return err
			}
			return g.print(ms, func() { printModels(ms) })
		},
	}
	show := &cobra.Command{
		Use: "show ID", Short: "Show the versions of one model", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ms, err := g.client().Models(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.print(ms, func() { printModels(ms) })
		},
	}
	del := &cobra.Command{
		Use: "delete ID VERSION", Short: "Remove a model version from the registry", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.client().Do(cmd.Context(), "DELETE", "/api/v1/models/"+args[0]+"/"+args[1], nil, nil)
		},
	}
	var since, baseline string
	driftCmd := &cobra.Command{
		Use: "drift ID VERSION", Short: "Show a model version's drift against its reference (PSI, KS)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"since": {since}}
			if baseline != "" {
				q.Set("baseline", baseline)
			}
			var rep telemetry.DriftReport
			if err := g.client().Do(cmd.Context(), "GET", "/api/v1/models/"+url.PathEscape(args[0])+"/"+url.PathEscape(args[1])+"/drift?"+q.Encode(), nil, &rep); err != nil {
				return err
			}
			return g.print(rep, func() { printDrift(&rep) })
		},
	}
	driftCmd.Flags().StringVar(&since, "since", "1h", "window of the version's telemetry")
	driftCmd.Flags().StringVar(&baseline, "baseline", "", "compare with this version instead of the reference stats or the other versions")
	cmd.AddCommand(push, list, show, del, driftCmd)
	return cmd
}

func printModels(ms []registry.Model) {
	fmt.Printf("%-20s %-10s %10s %-8s %4s  %s\n", "MODEL", "VERSION", "BYTES", "QUANT", "OPS", "TARGET")
	for _, m := range ms {
		fmt.Printf("%-20s %-10s %10d %-8s %4d  %s\n", m.ID, m.Version, m.Target.Length, m.Quantization, len(m.Ops), m.Target.Name)
	}
}

func printDrift(r *telemetry.DriftReport) {
	ref := r.Reference.Source
	if len(r.Reference.Versions) > 0 {
		ref += " " + strings.Join(r.Reference.Versions, ",")
	}
	fmt.Printf("%s@%s  %s .. %s  reference: %s\n", r.ModelID, r.Version, r.Since.Format("15:04"), r.Until.Format("15:04"), ref)
	if !r.Evaluated {
		fmt.Printf("  not evaluated: %s\n", r.Reason)
		return
	}
	f := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.3f", *v)
	}
	fmt.Printf("  drift %.3f  PSI classes %s  confidence %s  KS confidence %s  predictions %d (reference %d)\n",
		r.Drift, f(r.PSI.Classes), f(r.PSI.Confidence), f(r.KSConfidence), r.Current.Predictions, r.ReferenceDist.Predictions)
	for _, x := range r.PSI.Features {
		fmt.Printf("  feature %d PSI %.3f\n", x.Index, x.PSI)
	}
}
