package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/auth"
)

func newTokensCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "tokens", Short: "API tokens for operators and tools (admin)"}
	list := &cobra.Command{
		Use: "list", Short: "List API tokens (never their secrets)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := g.client().APITokens(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(ts, func() {
				fmt.Printf("%-16s %-20s %-8s %-20s %-20s %s\n", "ID", "NAME", "SCOPE", "CREATED", "EXPIRES", "STATE")
				now := time.Now()
				for _, t := range ts {
					exp, state := "never", "active"
					if !t.ExpiresAt.IsZero() {
						exp = t.ExpiresAt.Local().Format(time.DateTime)
					}
					if !t.RevokedAt.IsZero() {
						state = "revoked " + t.RevokedAt.Local().Format(time.DateTime)
					} else if !t.Active(now) {
						state = "expired"
					}
					fmt.Printf("%-16s %-20s %-8s %-20s %-20s %s\n", t.ID, t.Name, t.Scope, t.Created.Local().Format(time.DateTime), exp, state)
				}
			})
		},
	}
	var name, scope string
	var ttl time.Duration
	create := &cobra.Command{
		Use: "create --name NAME --scope admin|operator|viewer", Short: "Create an API token (the secret is printed once)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sc, err := auth.ParseScope(scope)
			if err != nil {
				return err
			}
			req := apitype.APITokenRequest{Name: name, Scope: sc}
			if ttl > 0 {
				req.TTL = ttl.String()
			}
			out, err := g.client().CreateAPIToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			return g.print(out, func() {
				fmt.Println(out.Token)
				fmt.Printf("# token %s (%s, scope %s); store it now, it is not shown again\n", out.Info.ID, out.Info.Name, out.Info.Scope)
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "who or what uses the token (letters, digits, . _ @ -)")
	create.Flags().StringVar(&scope, "scope", "viewer", "admin, operator or viewer")
	create.Flags().DurationVar(&ttl, "ttl", 0, "validity (0 = no expiry)")
	create.MarkFlagRequired("name")
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke an API token at once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := g.client().RevokeAPIToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.print(t, func() { fmt.Printf("revoked %s (%s)\n", t.ID, t.Name) })
		},
	}
	whoami := &cobra.Command{
		Use: "whoami", Short: "Show the id, name and scope of the token in use", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.client().Whoami(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(p, func() { fmt.Printf("%s (%s) scope %s\n", p.Name, p.ID, p.Scope) })
		},
	}
	cmd.AddCommand(list, create, revoke, whoami)
	return cmd
}
