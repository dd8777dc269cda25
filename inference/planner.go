package inference

import (
	"fmt"
	"sort"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

const arenaAlign = 64

// plan assigns arena offsets to the subgraph's arena tensors so that
// tensors whose lifetimes do not overlap share memory (greedy by size,
// first fit, as TensorFlow Lite's arena planner does). Subgraph inputs and
// outputs live for the whole run, so callers can read outputs and reuse
// inputs after Invoke.
func (ip *Interpreter) plan(sg *subgraph) error {
	type live struct {
		t           *tensor.Tensor
		first, last int
		size, off   int64
	}
	n := len(sg.nodes)
	lives := map[*tensor.Tensor]*live{}
	touch := func(t *tensor.Tensor, at int) {
		if t == nil || t.Alloc != tensor.ArenaAlloc {
			return
		}
		l, ok := lives[t]
		if !ok {
			l = &live{t: t, first: at, last: at}
			lives[t] = l
		}
		l.first = min(l.first, at)
		l.last = max(l.last, at)
	}
	for _, i := range sg.inputs {
		touch(sg.tensors[i], -1)
		touch(sg.tensors[i], n)
	}
	for _, o := range sg.outputs {
		touch(sg.tensors[o], -1)
		touch(sg.tensors[o], n)
	}
	for ni, nd := range sg.nodes {
		// A band's nodes fewer than kernels.Window apart may run at the
		// same time on different threads: widening every use by half
		// that on each side keeps their tensors apart.
		first, last := ni, ni
		if b := sg.bandOf(ni); b != nil {
			const e = kernels.Window / 2
			first, last = max(b.start, ni-e), min(b.end-1, ni+e)
		}
		for _, ts := range [][]*tensor.Tensor{nd.kn.Inputs, nd.kn.Outputs, nd.kn.Intermediates} {
			for _, t := range ts {
				touch(t, first)
				touch(t, last)
			}
		}
	}
	order := make([]*live, 0, len(lives))
	for _, l := range lives {
		sz := int64(l.t.NumElements()) * int64(l.t.Type.Size())
		if l.t.Type.Size() == 0 {
			return fmt.Errorf("subgraph %d tensor %q has unsupported type %s", sg.index, l.t.Name, l.t.Type)
		}
		l.size = (sz + arenaAlign - 1) / arenaAlign * arenaAlign
		order = append(order, l)
	}
	sort.Slice(order, func(a, b int) bool {
		if order[a].size != order[b].size {
			return order[a].size > order[b].size
		}
		if order[a].first != order[b].first {
			return order[a].first < order[b].first
		}
		return order[a].t.Name < order[b].t.Name
	})
	var placed []*live
	var total int64
	if ip.opts.threads == 2 {
		// Thread-affine placement (see placeCentred).
		spans := make([]span, len(order))
		for i, l := range order {
			spans[i] = span{first: l.first, last: l.last, size: l.size, name: l.t.Name}
		}
		offs, sum := placeCentred(spans)
		for i, l := range order {
			l.off = offs[i]
		}
		placed, total = order, sum
		order = nil
	}
	for _, l := range order {
		// Find the lowest offset where l fits between already placed
		// tensors whose lifetimes overlap l's.
		var conflicts []*live
		for _, p := range placed {
			if p.first <= l.last && l.first <= p.last {
				conflicts = append(conflicts, p)
			}
		}
		sort.Slice(conflicts, func(a, b int) bool { return conflicts[a].off < conflicts[b].off })
		off := int64(0)
		for _, c := range conflicts {
			if off+l.size <= c.off {
				break
			}
			off = max(off, c.off+c.size)
		}
		l.off = off
		placed = append(placed, l)
		total = max(total, off+l.size)
	}
	if total > ip.opts.maxMemory {
		return fmt.Errorf("subgraph %d needs %d bytes of activation memory, limit %d: %w", sg.index, total, ip.opts.maxMemory, kernels.ErrTooLarge)
	}
	if ip.opts.planOnly {
		return nil
	}
	if int64(cap(sg.arena)) < total {
		sg.arena = kernels.AlignedBytes(int(total))
	}
	sg.arena = sg.arena[:cap(sg.arena)]
	for _, l := range placed {
		sz := int64(l.t.NumElements()) * int64(l.t.Type.Size())
		l.t.Data = sg.arena[l.off : l.off+sz : l.off+sz]
	}
	if need := ip.ctx.ScratchNeed(); need > 0 {
		ip.ctx.Scratch(need)
	}
	return nil
}

// ArenaBytes returns the size of the primary subgraph's activation arena.
func (ip *Interpreter) ArenaBytes() int { return len(ip.subgraphs[0].arena) }

// span is a tensor's lifetime (first and last node using it) and size.
type span struct {
	first, last int
	size        int64
	name        string
}

// placeCentred places tensors for two threads so that every tensor's
// first half lies below one address and its second half above it, the
// same address for all tensors of a lane: nodes split along rows (or
// elements) give thread 0 the first half of their output and thread 1
// the second half, so a thread writes its half of a tensor on lines that
// only it wrote before, in the tensors that lived there earlier (a line
// last written by the other core costs about four times as much to
// write again on a machine whose cores share no cache level). Tensors go
// into lanes (intervals of the arena) such that tensors of one lane do
// not live at the same time: first fit by first use, the fewest lanes
// there can be (the most tensors alive at once). A lane is as wide as
// twice the largest half of its tensors, so the arena is larger than the
// greedy plan's (MobileNet v2: see docs/runtime.md). It returns each
// span's offset (64-byte aligned) and the arena size.
func placeCentred(spans []span) ([]int64, int64) {
	idx := make([]int, len(spans))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		sa, sb := spans[idx[a]], spans[idx[b]]
		if sa.first != sb.first {
			return sa.first < sb.first
		}
		if sa.last != sb.last {
			return sa.last < sb.last
		}
		return sa.name < sb.name
	})
	type lane struct {
		end  int   // last node of the lane's latest tensor
		half int64 // the largest half-width of its tensors
	}
	var lanes []lane
	laneOf := make([]int, len(spans))
	below := func(size int64) int64 { return size / 2 &^ (arenaAlign - 1) }
	for _, i := range idx {
		s := spans[i]
		k := len(lanes)
		for j := range lanes {
			if lanes[j].end < s.first {
				k = j
				break
			}
		}
		if k == len(lanes) {
			lanes = append(lanes, lane{})
		}
		lanes[k].end = s.last
		lanes[k].half = max(lanes[k].half, below(s.size), s.size-below(s.size))
		laneOf[i] = k
	}
	centre := make([]int64, len(lanes))
	var total int64
	for k, l := range lanes {
		centre[k] = total + l.half
		total += 2 * l.half
	}
	offs := make([]int64, len(spans))
	for i, s := range spans {
		offs[i] = centre[laneOf[i]] - below(s.size)
	}
	return offs, total
}
