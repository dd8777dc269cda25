package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
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
	cmd.AddCommand(list, show, del, reset, newDevicesPredictCmd(g))
	return cmd
}

// maxPredictInput bounds what fleetctl reads for a remote prediction; the
// server refuses bodies over half an MQTT payload (413) anyway.
const maxPredictInput = 8 << 20

func newDevicesPredictCmd(g *globals) *cobra.Command {
	var data, input string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "predict ID MODEL",
		Short: "Run a prediction on a device through the fleet server (its REST predict body in, its answer out)",
		Long: `Run a prediction on one device over its fleet link: the body is the agent's
REST predict request ({"instances": ...} or {"inputs": ...}; --data or
--input FILE, - for standard input) and MODEL a model id, optionally
id@version. A device the server knows to be offline is answered at once
(device_offline); one connected to the embedded broker that has not yet
subscribed to prediction requests (it just connected) is waited for up to
the server's --predict-ready-wait, then refused (device_not_ready,
nothing sent: retry); one that does not answer within the server's
--predict-timeout is a 504.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := predictBody(data, input)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			out, err := g.client().Predict(ctx, args[0], args[1], body)
			if err != nil {
				return err
			}
			var v any
			if err := json.Unmarshal(out, &v); err != nil {
				return fmt.Errorf("predict on %s: the answer is not JSON: %w", args[0], err)
			}
			return g.print(v, nil)
		},
	}
	c.Flags().StringVar(&data, "data", "", `predict request body, e.g. '{"instances":[[1,2,3]]}'`)
	c.Flags().StringVar(&input, "input", "", "file holding the predict request body (- for standard input)")
	c.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long (the server answers 504 after its own --predict-timeout)")
	return c
}

// predictBody reads the predict request from --data or --input and checks
// it is one JSON object within maxPredictInput bytes.
func predictBody(data, input string) ([]byte, error) {
	var b []byte
	switch {
	case data != "" && input != "":
		return nil, fmt.Errorf("predict: give the body with --data or --input, not both")
	case data != "":
		b = []byte(data)
	case input != "":
		var r io.Reader = os.Stdin
		if input != "-" {
			f, err := os.Open(input)
			if err != nil {
				return nil, fmt.Errorf("predict: --input: %w", err)
			}
			defer f.Close()
			r = f
		}
		var err error
		if b, err = io.ReadAll(io.LimitReader(r, maxPredictInput+1)); err != nil {
			return nil, fmt.Errorf("predict: read --input %s: %w", input, err)
		}
	default:
		return nil, fmt.Errorf("predict: no request body: give --data '{\"instances\":[...]}' or --input FILE")
	}
	if len(b) > maxPredictInput {
		return nil, fmt.Errorf("predict: request body over %d bytes", maxPredictInput)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("predict: the request body is not a JSON object: %w", err)
	}
	return b, nil
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
