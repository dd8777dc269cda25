package main

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/fleet/apitype"
)

func newDevicesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "devices", Short: "List and manage enrolled devices"}
	var selector string
	list := &cobra.Command{
		Use: "list", Short: "List devices (optionally by label selector)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ds, err := g.client().Devices(cmd.Context(), selector)
			if err != nil {
				return err
			}
			return g.print(ds, func() {
				fmt.Printf("%-16s %-8s %-7s %-24s %-10s %s\n", "DEVICE", "PRESENCE", "ARCH", "MODELS", "AGENT", "LABELS")
				for _, d := range ds {
					var ms []string
					for _, m := range d.Models {
						ms = append(ms, m.ID+"@"+m.Active)
					}
					var ls []string
					for k, v := range d.Labels {
						ls = append(ls, k+"="+v)
					}
					sort.Strings(ls)
					fmt.Printf("%-16s %-8s %-7s %-24s %-10s %s\n", d.ID, d.Presence, d.Hardware.Arch, strings.Join(ms, ","), d.AgentVersion, strings.Join(ls, ","))
				}
			})
		},
	}
	list.Flags().StringVar(&selector, "selector", "", "label selector, e.g. site=lab,ring!=prod")
	show := &cobra.Command{
		Use: "show ID", Short: "Show a device with its jobs", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := g.client().Device(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.print(d, nil)
		},
	}
	del := &cobra.Command{
		Use: "delete ID", Short: "Delete a device; its MQTT credentials stop working", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.client().Do(cmd.Context(), "DELETE", "/api/v1/devices/"+url.PathEscape(args[0]), nil, nil)
		},
	}
	reset := &cobra.Command{
		Use: "reset ID", Short: "Revoke a device's credentials and cut its session; it may enroll again with a token (admin)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out map[string]any
			if err := g.client().Do(cmd.Context(), "POST", "/api/v1/devices/"+url.PathEscape(args[0])+"/reset", nil, &out); err != nil {
				return err
			}
			return g.print(out, func() { fmt.Printf("%s: %v\n", args[0], out["message"]) })
		},
	}
	cmd.AddCommand(list, show, del, reset)
	return cmd
}

func newEnrollTokensCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "enroll-tokens", Short: "Enrollment tokens for devices (admin)"}
	var labels map[string]string
	var maxUses int
	var ttl time.Duration
	create := &cobra.Command{
		Use: "create", Short: "Create an enrollment token (printed once; its labels are authoritative)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := apitype.TokenRequest{Labels: labels, MaxUses: maxUses}
			if ttl > 0 {
				req.TTL = ttl.String()
			}
			tok, err := g.client().CreateEnrollToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			return g.print(map[string]string{"token": tok}, func() { fmt.Println(tok) })
		},
	}
	create.Flags().StringToStringVar(&labels, "label", nil, "labels given to devices enrolled with the token (k=v,...)")
	create.Flags().IntVar(&maxUses, "max-uses", 0, "uses allowed (0 = unlimited)")
	create.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "validity (0 = no expiry)")
	cmd.AddCommand(create)
	return cmd
}

func newGroupsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "groups", Short: "Named label selectors"}
	var selector string
	set := &cobra.Command{
		Use: "set NAME --selector S", Short: "Define a group", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.client().Do(cmd.Context(), "PUT", "/api/v1/groups/"+args[0], map[string]string{"selector": selector}, nil)
		},
	}
	set.Flags().StringVar(&selector, "selector", "", "label selector")
	list := &cobra.Command{
		Use: "list", Short: "List groups with their devices", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out map[string]any
			if err := g.client().Do(cmd.Context(), "GET", "/api/v1/groups", nil, &out); err != nil {
				return err
			}
			return g.print(out, nil)
		},
	}
	cmd.AddCommand(set, list)
	return cmd
}
