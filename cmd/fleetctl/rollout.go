package main

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/server"
)

func newRolloutCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "rollout", Short: "Staged rollouts gated on device telemetry"}
	var req server.RolloutRequest
	var soak, deadline, baseline time.Duration
	gates := rollout.DefaultGates()
	var watch bool
	create := &cobra.Command{
		Use:   "create --model NAME --version V",
		Short: "Start a rollout (canary, blue-green, shadow or ab)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.Soak, req.DeviceDeadline, req.BaselineWindow = soak.String(), deadline.String(), baseline.String()
			req.Gates = &gates
			r, err := g.client().CreateRollout(cmd.Context(), req)
			if err != nil {
				return err
			}
			if watch {
				return watchRollout(cmd, g, r.Spec.ID)
			}
			return g.print(r, func() { printRollout(r) })
		},
	}
	f := create.Flags()
	f.StringVar(&req.ID, "id", "", "rollout id (default generated)")
	f.StringVar(&req.ModelID, "model", "", "model id")
	f.StringVar(&req.Version, "version", "", "version to roll out")
	f.StringVar((*string)(&req.Strategy), "strategy", "canary", "canary, blue-green, shadow or ab")
	f.IntSliceVar(&req.Stages, "stages", nil, "cumulative percentages, e.g. 1,10,50,100 (canary default)")
	f.IntVar(&req.SplitPercent, "split", 0, "A/B: percent of traffic to the new version (default 50)")
	f.StringVar(&req.Selector, "selector", "", "label selector of the target devices")
	f.DurationVar(&soak, "soak", 10*time.Minute, "how long each stage's gates must hold")
	f.DurationVar(&deadline, "device-deadline", 10*time.Minute, "how long a stage waits for (offline) devices")
	f.DurationVar(&baseline, "baseline-window", 15*time.Minute, "how far before a stage's start baseline telemetry is taken (canary, blue-green)")
	f.StringVar((*string)(&req.OnFailure), "on-failure", "rollback", "rollback or pause")
	f.BoolVar(&req.ManualPromote, "manual-promote", false, "wait for 'fleetctl rollout promote' after each healthy stage")
	f.Float64Var(&gates.MaxErrorRate, "max-error-rate", gates.MaxErrorRate, "gate: highest error rate of the new version")
	f.Float64Var(&gates.MaxErrorRateDelta, "max-error-rate-delta", gates.MaxErrorRateDelta, "gate: most the error rate may exceed the baseline's")
	f.Float64Var(&gates.MaxP95Ratio, "max-p95-ratio", gates.MaxP95Ratio, "gate: highest p95 latency ratio new/baseline")
	f.Float64Var(&gates.MinP95DeltaMs, "min-p95-delta-ms", gates.MinP95DeltaMs, "gate: p95 noise floor; the latency gate fails only if new p95 - baseline p95 exceeds it too")
	f.IntVar(&gates.MaxCrashes, "max-crashes", gates.MaxCrashes, "gate: crashes allowed (-1 disables)")
	f.IntVar(&gates.MaxRollbacks, "max-rollbacks", gates.MaxRollbacks, "gate: device-side rollbacks allowed (-1 disables)")
	f.Float64Var(&gates.MinShadowAgreement, "min-shadow-agreement", gates.MinShadowAgreement, "gate: lowest shadow top-1 agreement")
	f.IntVar(&gates.MaxInstallFailures, "max-install-failures", gates.MaxInstallFailures, "gate: failed installs allowed (-1 disables)")
	f.Uint64Var(&gates.MinRequests, "min-requests", gates.MinRequests, "requests of the new version a stage needs before it can pass")
	f.BoolVar(&watch, "watch", false, "follow the rollout until it finishes")
	create.MarkFlagRequired("model")
	create.MarkFlagRequired("version")

	list := &cobra.Command{
		Use: "list", Short: "List rollouts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rs, err := g.client().Rollouts(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(rs, func() {
				fmt.Printf("%-14s %-22s %-10s %-20s %-6s %s\n", "ROLLOUT", "MODEL", "STRATEGY", "PHASE", "STAGE", "REASON")
				for _, r := range rs {
					fmt.Printf("%-14s %-22s %-10s %-20s %-6s %s\n", r.Spec.ID, r.Spec.ModelID+"@"+r.Spec.Version, r.Spec.Strategy, r.Phase,
						fmt.Sprintf("%d/%d", r.Stage+1, len(r.Spec.Stages)), r.Reason)
				}
			})
		},
	}
	show := &cobra.Command{
		Use: "show ID", Short: "Show a rollout with gates and devices", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if watch {
				return watchRollout(cmd, g, args[0])
			}
			r, err := g.client().Rollout(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.print(r, func() { printRollout(r) })
		},
	}
	show.Flags().BoolVar(&watch, "watch", false, "follow until the rollout finishes")
	cmd.AddCommand(create, list, show)
	for _, c := range []rollout.Command{rollout.Promote, rollout.Pause, rollout.Resume, rollout.Abort} {
		c := c
		cmd.AddCommand(&cobra.Command{
			Use: string(c) + " ID", Short: strings.ToUpper(string(c[:1])) + string(c[1:]) + " a rollout", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				r, err := g.client().Command(cmd.Context(), args[0], c)
				if err != nil {
					return err
				}
				return g.print(r, func() { printRollout(r) })
			},
		})
	}
	return cmd
}

func watchRollout(cmd *cobra.Command, g *globals, id string) error {
	last := ""
	for {
		r, err := g.client().Rollout(cmd.Context(), id)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s stage %d/%d (%d%%) %s %s", r.Phase, r.Stage+1, len(r.Spec.Stages), r.Spec.Stages[r.Stage], gateLine(r), r.Reason)
		if line != last {
			fmt.Printf("%s %s\n", time.Now().Format("15:04:05"), line)
			last = line
		}
		if r.Phase.Final() {
			return nil
		}
		select {
		case <-cmd.Context().Done():
			return cmd.Context().Err()
		case <-time.After(time.Second):
		}
	}
}

func gateLine(r *rollout.Rollout) string {
	var parts []string
	for _, g := range r.Gates {
		if !g.Evaluated {
			continue
		}
		mark := "ok"
		if !g.OK {
			mark = "FAIL"
		}
		parts = append(parts, fmt.Sprintf("%s=%.3g(%s)", g.Name, g.Value, mark))
	}
	return strings.Join(parts, " ")
}

func printRollout(r *rollout.Rollout) {
	s := r.Spec
	fmt.Printf("rollout %s: %s@%s %s stages %v selector %q\n", s.ID, s.ModelID, s.Version, s.Strategy, s.Stages, s.Selector)
	fmt.Printf("phase %s, stage %d/%d  %s\n", r.Phase, r.Stage+1, len(s.Stages), r.Reason)
	fmt.Printf("new:      %d req, error rate %.4f, p95 %.2fms\nbaseline: %d req, error rate %.4f, p95 %.2fms\n",
		r.New.Requests, r.New.ErrorRate, r.New.P95, r.Baseline.Requests, r.Baseline.ErrorRate, r.Baseline.P95)
	for _, g := range r.Gates {
		st := "waiting"
		if g.Evaluated {
			st = map[bool]string{true: "pass", false: "FAIL"}[g.OK]
		}
		fmt.Printf("  gate %-18s %10.4f  threshold %10.4f  %s\n", g.Name, g.Value, g.Threshold, st)
	}
	ids := make([]string, 0, len(r.Devices))
	for id := range r.Devices {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		d := r.Devices[id]
		fmt.Printf("  device %-16s stage %d job %-14s %-11s %s", id, d.Stage+1, d.JobID, d.JobState, d.Reason)
		if d.RollbackJobID != "" {
			fmt.Printf(" rollback %s", d.RollbackState)
		}
		fmt.Println()
	}
}

func newTelemetryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "telemetry", Short: "Fleet telemetry"}
	var model, version, since string
	health := &cobra.Command{
		Use: "health", Short: "Aggregate health of a model version", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := g.client().Health(cmd.Context(), model, version, since)
			if err != nil {
				return err
			}
			return g.print(h, func() {
				fmt.Printf("%d devices, %d records, %d requests, error rate %.4f, p50 %.2fms p95 %.2fms p99 %.2fms, crashes %d, shadow agreement %.3f\n",
					h.Devices, h.Records, h.Requests, h.ErrorRate, h.P50, h.P95, h.P99, h.Crashes, h.ShadowAgreement)
			})
		},
	}
	health.Flags().StringVar(&model, "model", "", "model id")
	health.Flags().StringVar(&version, "version", "", "version (empty: all)")
	health.Flags().StringVar(&since, "since", "15m", "window")
	cmd.AddCommand(health)
	_ = url.Values{}
	return cmd
}
