package main

import (
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/client"
)

func newAgentsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "agents", Short: "Release edge-agent binaries for fleet-driven agent updates"}
	var p client.AgentPush
	var progress, force bool
	push := &cobra.Command{
		Use:   "push BINARY [--version V] [--arch linux/arm64|linux/arm/v7|linux/amd64]",
		Short: "Upload an edge-agent binary; fleet-server signs it into its TUF repository",
		Long: `Uploads an edge-agent binary to fleet-server, which signs it (with the targets
key in its --keys-dir) into its update repository as the release of VERSION
for one platform. Roll it out with 'fleetctl rollout create --agent --version V'.

The binary's Go build information is checked first: it must be edge-agent,
built for --arch (default: the platform it was built for) and as --version
(-ldflags "-X main.version=V"; default: that version), since a device's
health check expects the new binary to report the version it was released as.
--force skips these checks. Progress (bytes/total) is printed on a terminal
or with --progress.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Path = args[0]
			if err := checkAgentBinary(&p, force); err != nil {
				return err
			}
			out := cmd.ErrOrStderr()
			if progress || isTerminal(out) {
				p.Progress = uploadProgress(out, fmt.Sprintf("upload edge-agent %s %s", p.Version, p.Platform), isTerminal(out))
			}
			rel, err := g.client().PushAgent(cmd.Context(), p)
			if err != nil {
				return err
			}
			return g.print(rel, func() {
				what := "released"
				if rel.Existed {
					what = "already released (same bytes)"
				}
				fmt.Printf("edge-agent %s for %s %s: %d bytes\n  target %s sha256 %s\nroll it out: fleetctl rollout create --agent --version %s --stages 1,10,50,100 --watch\n",
					rel.Version, rel.Platform, what, rel.Target.Length, rel.Target.Name, rel.Target.SHA256, rel.Version)
			})
		},
	}
	f := push.Flags()
	f.StringVar(&p.Version, "version", "", "version the binary was built as (default: its -X main.version)")
	f.StringVar(&p.Platform, "arch", "", "platform: linux/arm64, linux/arm/v7, linux/amd64, ... (default: the binary's)")
	f.BoolVar(&progress, "progress", false, "print upload progress even when stderr is not a terminal")
	f.BoolVar(&force, "force", false, "skip the checks of the binary's build information")

	list := &cobra.Command{
		Use: "list", Short: "List released edge-agent versions per platform, with the devices running each", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rels, err := g.client().Agents(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(rels, func() { printAgents(rels) })
		},
	}
	cmd.AddCommand(push, list)
	return cmd
}

func printAgents(rels []apitype.AgentRelease) {
	fmt.Printf("%-14s %-12s %10s %7s  %s\n", "PLATFORM", "VERSION", "BYTES", "DEVICES", "SHA256")
	for _, r := range rels {
		sum := r.Target.SHA256
		if len(sum) > 16 {
			sum = sum[:16]
		}
		fmt.Printf("%-14s %-12s %10d %7d  %s\n", r.Platform, r.Version, r.Target.Length, r.Devices, sum)
	}
}

// checkAgentBinary reads the binary's Go build information: it must be
// edge-agent, built for p.Platform and as p.Version; empty fields are taken
// from it. With force, only empty fields are filled (when possible).
func checkAgentBinary(p *client.AgentPush, force bool) error {
	bi, err := buildinfo.ReadFile(p.Path)
	if err != nil {
		if force && p.Version != "" && p.Platform != "" {
			return nil
		}
		return fmt.Errorf("%s: not a Go executable with build information (%v); an edge-agent binary is (--force with --version and --arch skips this check)", p.Path, err)
	}
	set := map[string]string{}
	for _, s := range bi.Settings {
		set[s.Key] = s.Value
	}
	plat := set["GOOS"] + "/" + set["GOARCH"]
	if set["GOARCH"] == "arm" {
		v, _, _ := strings.Cut(set["GOARM"], ",")
		if v == "" {
			v = "7"
		}
		plat += "/v" + v
	}
	built := ""
	if _, rest, ok := strings.Cut(set["-ldflags"], "main.version="); ok {
		built, _, _ = strings.Cut(rest, " ")
		built = strings.Trim(built, `'"`)
	}
	if p.Platform == "" {
		p.Platform = plat
	}
	if p.Version == "" {
		p.Version = built
	}
	if p.Version == "" {
		return fmt.Errorf("%s: give --version (the binary was not built with -ldflags \"-X main.version=V\")", p.Path)
	}
	if force {
		return nil
	}
	switch {
	case !strings.HasSuffix(bi.Path, "/cmd/edge-agent"):
		return fmt.Errorf("%s is %s, not edge-agent (--force to push it anyway)", p.Path, bi.Path)
	case p.Platform != plat && !(strings.HasSuffix(p.Platform, "/arm") && p.Platform+"/v7" == plat):
		return fmt.Errorf("%s was built for %s, not --arch %s", p.Path, plat, p.Platform)
	case built != "" && built != p.Version:
		return fmt.Errorf("%s was built as version %s (-X main.version), not --version %s: the device's health check would refuse it", p.Path, built, p.Version)
	}
	return nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// uploadProgress prints "label: 12.0/40.0 MiB (30%) 5.1 MiB/s": on a
// terminal as one line rewritten in place (at most 10 times a second),
// otherwise a line at every further 10% and at the end.
func uploadProgress(w io.Writer, label string, tty bool) func(done, total int64) {
	var mu sync.Mutex
	start := time.Now()
	lastPct, last := -10, time.Time{}
	return func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		pct := 100
		if total > 0 {
			pct = int(done * 100 / total)
		}
		now := time.Now()
		end := done >= total
		if tty && !end && now.Sub(last) < 100*time.Millisecond {
			return
		}
		if !tty && !end && pct/10 == lastPct/10 {
			return
		}
		if end && lastPct == 100 {
			return
		}
		lastPct, last = pct, now
		rate := ""
		if el := now.Sub(start).Seconds(); el > 0 {
			rate = fmt.Sprintf(" %.1f MiB/s", float64(done)/el/(1<<20))
		}
		line := fmt.Sprintf("%s: %.1f/%.1f MiB (%d%%)%s", label, float64(done)/(1<<20), float64(total)/(1<<20), pct, rate)
		switch {
		case tty && end:
			fmt.Fprintf(w, "\r%s\n", line)
		case tty:
			fmt.Fprintf(w, "\r%s", line)
		default:
			fmt.Fprintln(w, line)
		}
	}
}
