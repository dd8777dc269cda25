package registry

import (
	"fmt"
	"strings"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// Selector is a label selector: comma-separated terms "k=v", "k!=v", "k"
// (label present) and "!k" (label absent), all of which must hold.
type Selector struct{ terms []term }

type term struct {
	key, value string
	op         string // "=", "!=", "exists", "!exists"
}

// ParseSelector parses a selector; "" selects every device.
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var t term
		switch {
		case strings.Contains(part, "!="):
			k, v, _ := strings.Cut(part, "!=")
			t = term{strings.TrimSpace(k), strings.TrimSpace(v), "!="}
		case strings.Contains(part, "="):
			k, v, _ := strings.Cut(part, "=")
			t = term{strings.TrimSpace(strings.TrimSuffix(k, "=")), strings.TrimSpace(strings.TrimPrefix(v, "=")), "="}
		case strings.HasPrefix(part, "!"):
			t = term{key: strings.TrimSpace(part[1:]), op: "!exists"}
		default:
			t = term{key: part, op: "exists"}
		}
		if err := wire.ValidateID("selector label key", t.key); err != nil {
			return Selector{}, fmt.Errorf("selector %q: term %q: %w", s, part, err)
		}
		sel.terms = append(sel.terms, t)
	}
	return sel, nil
}

// Matches reports whether labels satisfy every term.
func (s Selector) Matches(labels map[string]string) bool {
	for _, t := range s.terms {
		v, ok := labels[t.key]
		switch t.op {
		case "=":
			if !ok || v != t.value {
				return false
			}
		case "!=":
			if ok && v == t.value {
				return false
			}
		case "exists":
			if !ok {
				return false
			}
		case "!exists":
			if ok {
				return false
			}
		}
	}
	return true
}

// String renders the selector in the syntax ParseSelector reads.
func (s Selector) String() string {
	parts := make([]string, len(s.terms))
	for i, t := range s.terms {
		switch t.op {
		case "exists":
			parts[i] = t.key
		case "!exists":
			parts[i] = "!" + t.key
		default:
			parts[i] = t.key + t.op + t.value
		}
	}
	return strings.Join(parts, ",")
}
