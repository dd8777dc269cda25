package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/client"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/internal/wire"
)

func newRolloutCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "rollout", Short: "Staged rollouts gated on device telemetry"}
	var req apitype.RolloutRequest
	var soak, deadline, baseline time.Duration
	gates := rollout.DefaultGates()
	var watch, agent bool
	create := &cobra.Command{
		Use:   "create (--model NAME | --agent) --version V",
		Short: "Start a rollout of a model version (canary, blue-green, shadow or ab) or of an edge-agent version (--agent)",
		Long: `Starts a staged rollout. With --model, of a model version pushed with
'fleetctl models push'. With --agent, of an edge-agent version pushed with
'fleetctl agents push' (canary or blue-green): each device downloads the
binary released for its platform, health-checks it, restarts as it and must
come back online reporting the version within --device-deadline; the gates
judge the models the devices serve (error rate, p95 against the same devices
before the stage, crashes, device rollbacks) and failed updates
(--max-install-failures). --min-requests defaults to 0 for agent rollouts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case agent && req.ModelID != "":
				return fmt.Errorf("--agent rolls out edge-agent itself: give --version, not --model")
			case !agent && req.ModelID == "":
				return fmt.Errorf("give --model NAME (a model rollout) or --agent (an edge-agent rollout)")
			}
			if agent {
				req.Kind = rollout.KindAgent
				if !cmd.Flags().Changed("min-requests") {
					gates.MinRequests = rollout.DefaultAgentGates().MinRequests
				}
			}
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
	f.BoolVar(&agent, "agent", false, "roll out an edge-agent version (fleetctl agents push) instead of a model")
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
	f.Float64Var(&gates.MaxDrift, "max-drift", gates.MaxDrift, "gate \"drift\": highest PSI of the new version's class/confidence/feature histograms against its reference (0 disables; 0.25 = significant shift; docs/monitoring.md)")
	f.BoolVar(&watch, "watch", false, "follow the rollout until it finishes")
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
					fmt.Printf("%-14s %-22s %-10s %-20s %-6s %s\n", r.Spec.ID, r.Spec.Subject(), r.Spec.Strategy, r.Phase,
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
			c := g.client()
			r, err := c.Rollout(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.print(r, func() {
				printRollout(r)
				if !r.Phase.Final() {
					if w := waitingFor(r, selectedDevices(cmd.Context(), c, r.Spec.Selector), time.Now()); w != "" {
						fmt.Println(w)
					}
				}
			})
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

// watchRollout polls the rollout every second and prints a line whenever
// its state changes: phase, stage, devices done/total, gates and why it is
// waiting. It ends with the rollout's final state: nil when it succeeded,
// an error when it was rolled back. Interrupted (Ctrl-C), it prints where
// the rollout stands and returns nil: the rollout goes on without it.
func watchRollout(cmd *cobra.Command, g *globals, id string) error {
	ctx := cmd.Context()
	c := g.client()
	last := ""
	var r *rollout.Rollout
	failures := 0
	for {
		cur, err := c.Rollout(ctx, id)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			// A server restart or a dropped connection is not the end
			// of the rollout: keep polling for a while.
			if failures++; failures > 30 || r == nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%s %v (retrying)\n", time.Now().Format("15:04:05"), err)
		default:
			failures = 0
			r = cur
			var devs map[string]apitype.DeviceView
			if !r.Phase.Final() {
				devs = selectedDevices(ctx, c, r.Spec.Selector)
			}
			if line := watchLine(r, devs, time.Now()); line != last {
				fmt.Printf("%s %s\n", time.Now().Format("15:04:05"), line)
				last = line
			}
			if r.Phase.Final() {
				return finalState(r)
			}
		}
		select {
		case <-ctx.Done():
			if r != nil {
				fmt.Printf("stopped watching; rollout %s is %s at stage %d/%d and goes on (fleetctl rollout show %s)\n",
					r.Spec.ID, r.Phase, r.Stage+1, len(r.Spec.Stages), r.Spec.ID)
			}
			return nil
		case <-time.After(time.Second):
		}
	}
}

// finalState prints how a finished rollout ended; a rollout that did not
// succeed is an error, so scripts can branch on fleetctl's exit status.
func finalState(r *rollout.Rollout) error {
	took := ""
	if !r.Finished.IsZero() && !r.Created.IsZero() {
		took = " in " + r.Finished.Sub(r.Created).Round(time.Second).String()
	}
	if r.Phase == rollout.Succeeded {
		fmt.Printf("rollout %s succeeded%s: %s on %d devices\n", r.Spec.ID, took, r.Spec.Subject(), len(r.Devices))
		return nil
	}
	return fmt.Errorf("rollout %s %s%s: %s", r.Spec.ID, r.Phase, took, r.Reason)
}

// selectedDevices returns the devices the rollout's selector matches, or nil
// when they cannot be listed (the watch line then omits presence details).
func selectedDevices(ctx context.Context, c *client.Client, selector string) map[string]apitype.DeviceView {
	ds, err := c.Devices(ctx, selector)
	if err != nil {
		return nil
	}
	m := make(map[string]apitype.DeviceView, len(ds))
	for _, d := range ds {
		m[d.ID] = d
	}
	return m
}

// watchLine is one line of --watch: phase, stage, devices whose job is
// done out of those selected, gate verdicts and why the stage waits.
func watchLine(r *rollout.Rollout, devs map[string]apitype.DeviceView, now time.Time) string {
	pct := 0
	if r.Stage < len(r.Spec.Stages) {
		pct = r.Spec.Stages[r.Stage]
	}
	done := 0
	for _, d := range r.Devices {
		if d.JobState == wire.JobSucceeded {
			done++
		}
	}
	total := len(devs)
	if total < len(r.Devices) {
		total = len(r.Devices)
	}
	parts := []string{fmt.Sprintf("%s stage %d/%d (%d%%) devices %d/%d", r.Phase, r.Stage+1, len(r.Spec.Stages), pct, done, total)}
	if gl := gateLine(r); gl != "" {
		parts = append(parts, gl)
	}
	if !r.Phase.Final() {
		if w := waitingFor(r, devs, now); w != "" {
			parts = append(parts, w)
		}
	}
	if r.Reason != "" {
		parts = append(parts, "— "+r.Reason)
	}
	return strings.Join(parts, " ")
}

// waitingFor says what the current stage waits for: devices whose job is
// not finished (with their presence when known), then telemetry, then soak.
func waitingFor(r *rollout.Rollout, devs map[string]apitype.DeviceView, now time.Time) string {
	var pending []string
	for _, id := range sortedIDs(r.Devices) {
		d := r.Devices[id]
		if d.JobState.Terminal() {
			continue
		}
		what := "job " + string(d.JobState)
		if d.JobState == "" {
			what = "job not delivered yet"
		}
		if d.Reason != "" {
			// The device's own words (restarting into the new agent...)
			// or the fleet's (waiting for its status to report it).
			why := d.Reason
			if len(why) > 100 {
				why = why[:100] + "…"
			}
			what += ": " + why
		}
		if dv, ok := devs[id]; ok && dv.Presence != wire.Online {
			what = "offline"
			if !dv.LastSeen.IsZero() {
				what += " since " + dv.LastSeen.Local().Format("15:04:05")
			}
		}
		if !d.ConfirmBy.IsZero() {
			what += fmt.Sprintf(", times out in %s", d.ConfirmBy.Sub(now).Round(time.Second))
		}
		pending = append(pending, fmt.Sprintf("%s (%s)", id, what))
	}
	if len(pending) > 0 {
		if len(pending) > 3 {
			pending = append(pending[:3], fmt.Sprintf("and %d more", len(pending)-3))
		}
		return "waiting for " + strings.Join(pending, ", ")
	}
	for _, gr := range r.Gates {
		if gr.Name == "min_requests" && !gr.OK {
			return fmt.Sprintf("waiting: %.0f/%.0f requests of the new version", gr.Value, gr.Threshold)
		}
	}
	if r.Phase == rollout.Running && !r.SoakStarted.IsZero() && r.Spec.Soak > 0 {
		if left := r.SoakStarted.Add(r.Spec.Soak).Sub(now); left > 0 {
			return fmt.Sprintf("soaking: %s left", left.Round(time.Second))
		}
	}
	return ""
}

func sortedIDs(m map[string]*rollout.DeviceState) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// gateStatus is a gate's verdict for people: a gate without enough data
// yet, and min_requests before the count is reached, are "waiting", not
// failures.
func gateStatus(g rollout.GateResult) string {
	switch {
	case g.Name == "min_requests" && !g.OK:
		return fmt.Sprintf("waiting: %.0f/%.0f requests", g.Value, g.Threshold)
	case !g.Evaluated:
		return "waiting for data"
	case g.OK:
		return "pass"
	default:
		return "FAIL"
	}
}

func gateLine(r *rollout.Rollout) string {
	var parts []string
	for _, g := range r.Gates {
		if !g.Evaluated || g.Name == "min_requests" {
			continue // shown as the reason for waiting
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
	fmt.Printf("rollout %s: %s %s stages %v selector %q\n", s.ID, s.Subject(), s.Strategy, s.Stages, s.Selector)
	fmt.Printf("phase %s, stage %d/%d  %s\n", r.Phase, r.Stage+1, len(s.Stages), r.Reason)
	fmt.Printf("new:      %d req, error rate %.4f, p95 %.2fms\nbaseline: %d req, error rate %.4f, p95 %.2fms\n",
		r.New.Requests, r.New.ErrorRate, r.New.P95, r.Baseline.Requests, r.Baseline.ErrorRate, r.Baseline.P95)
	for _, g := range r.Gates {
		fmt.Printf("  gate %-18s %10.4f  threshold %10.4f  %s\n", g.Name, g.Value, g.Threshold, gateStatus(g))
	}
	for _, id := range sortedIDs(r.Devices) {
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
