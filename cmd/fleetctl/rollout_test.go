package main

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/fleet/rollout"
)

// TestRolloutCreateHasEveryGateFlag: each field of rollout.Gates (by its
// JSON name, with - for _) is a flag of "rollout create", defaulting to
// DefaultGates, so no gate knob is API-only.
func TestRolloutCreateHasEveryGateFlag(t *testing.T) {
	cmd := newRolloutCmd(&globals{})
	create, _, err := cmd.Find([]string{"create"})
	if err != nil {
		t.Fatal(err)
	}
	def := reflect.ValueOf(rollout.DefaultGates())
	typ := def.Type()
	for i := 0; i < typ.NumField(); i++ {
		tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		name := strings.ReplaceAll(tag, "_", "-")
		f := create.Flags().Lookup(name)
		if f == nil {
			t.Errorf("gate %s (%s) has no --%s flag", typ.Field(i).Name, tag, name)
			continue
		}
		if got, want := f.DefValue, fmt.Sprint(def.Field(i).Interface()); got != want {
			t.Errorf("--%s defaults to %s, want %s (DefaultGates)", name, got, want)
		}
	}
	for _, name := range []string{"baseline-window", "soak", "device-deadline", "on-failure", "manual-promote", "split", "stages", "selector"} {
		if create.Flags().Lookup(name) == nil {
			t.Errorf("no --%s flag", name)
		}
	}
}
