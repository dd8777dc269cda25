package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/fleet/client"
)

func newAuditCmd(g *globals) *cobra.Command {
	var q client.AuditQuery
	cmd := &cobra.Command{
		Use: "audit", Short: "Read the audit log of mutating API calls, newest first (admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			page, err := g.client().Audit(cmd.Context(), q)
			if err != nil {
				return err
			}
			return g.print(page, func() {
				fmt.Printf("%-6s %-19s %-20s %-6s %-36s %-4s %-22s %s\n", "SEQ", "TIME", "WHO", "METHOD", "ROUTE", "CODE", "CLIENT", "TARGET")
				for _, e := range page.Entries {
					who := e.Actor
					if e.Name != "" {
						who = e.Name + "(" + e.Actor[:min(6, len(e.Actor))] + ")"
					}
					var ts []string
					for k, v := range e.Target {
						ts = append(ts, k+"="+v)
					}
					sort.Strings(ts)
					fmt.Printf("%-6d %-19s %-20s %-6s %-36s %-4d %-22s %s\n", e.Seq, e.Time.Local().Format(time.DateTime), who, e.Method, e.Route, e.Status, e.Client, strings.Join(ts, ","))
				}
				if page.Next != 0 {
					fmt.Printf("# more: fleetctl audit --before %d\n", page.Next)
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Actor, "actor", "", "only calls by this token id or name")
	f.StringVar(&q.Method, "method", "", "only this HTTP method")
	f.StringVar(&q.Route, "route", "", "only routes containing this text, e.g. rollouts")
	f.StringVar(&q.Since, "since", "", "only the last duration, e.g. 24h")
	f.Uint64Var(&q.Before, "before", 0, "page: entries older than this seq")
	f.IntVar(&q.Limit, "limit", 50, "entries per page (max 1000)")
	return cmd
}
