package inference

import (
	"context"
	"fmt"

	"github.com/edgefleet/edgefleet/inference/kernels"
)

// formBands finds the runs of at least two consecutive nodes that can run
// as one kernels.Region on the interpreter's threads (convolutions,
// depthwise convolutions and 8-bit additions: MobileNet's inverted
// residual blocks) and records them in sg.bands. With one thread there
// are none.
func (ip *Interpreter) formBands(sg *subgraph) {
	sg.bands = sg.bands[:0]
	sg.bandAt = sg.bandAt[:0]
	for range sg.nodes {
		sg.bandAt = append(sg.bandAt, -1)
	}
	threads := ip.opts.threads
	if threads < 2 || ip.opts.noBands {
		return
	}
	ok := func(n *node) bool {
		return n.control == controlNone && !n.dynamic && kernels.CanBand(&n.kn, threads)
	}
	for i := 0; i < len(sg.nodes); {
		if !ok(sg.nodes[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(sg.nodes) && ok(sg.nodes[j]) {
			j++
		}
		if j-i >= 2 {
			kns := make([]*kernels.Node, 0, j-i)
			for _, n := range sg.nodes[i:j] {
				kns = append(kns, &n.kn)
			}
			sg.bandAt[i] = len(sg.bands)
			sg.bands = append(sg.bands, band{start: i, end: j, region: kernels.NewRegion(kns, threads)})
		}
		i = j
	}
}

// bandOf returns the band holding node i, or nil.
func (sg *subgraph) bandOf(i int) *band {
	for k := range sg.bands {
		if b := &sg.bands[k]; b.start <= i && i < b.end {
			return b
		}
	}
	return nil
}

// invokeBand evaluates a band's nodes (each Eval only hands its job to
// the region) and runs the region; from the second Invoke on it runs the
// jobs the first one captured (the Evals would set up the same ones,
// ≈ 140 ns a node).
func (ip *Interpreter) invokeBand(ctx context.Context, sg *subgraph, b *band) error {
	kc := ip.ctx
	if !b.region.Captured() {
		kc.BeginRegion(b.region)
		for _, n := range sg.nodes[b.start:b.end] {
			kc.RegionNode()
			if err := n.kernel.Eval(kc, &n.kn); err != nil {
				kc.EndRegion(false)
				return fmt.Errorf("invoke subgraph %d: %w", sg.index, err)
			}
		}
		if err := kc.EndRegion(true); err != nil {
			return fmt.Errorf("invoke subgraph %d nodes %d-%d: %w", sg.index, b.start, b.end-1, err)
		}
	}
	if !kc.RunRegion(b.region, ctx.Done()) {
		return ctx.Err()
	}
	return nil
}
