package conv

import (
	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
)

// Both convolutions split their job along output pixels (rows of the
// GEMM): a chunk [lo, hi) writes those pixels' channels and reads the
// input rows their windows cover, which is what a kernels.Region needs
// to know to run consecutive nodes without a barrier between them.

// Bandable: CONV_2D runs in a region unless its input is quantized at
// Eval (hybrid), its filter is packed at Eval (dynamic), it has fewer
// scratch regions than threads, or the byte GEMM splits it along
// channels (every chunk reads every input row; its per-worker cache of
// prepared rows also assumes the worker runs no other node in between).
func (d *convData) Bandable(n *kernels.Node, threads int) bool {
	return n.Op == schema.OpConv2D && !d.hybrid && !d.dynamic && d.workers >= threads && d.rows > 0 && d.outC > 0 &&
		!(d.qb != nil && d.qbChanSplit(threads))
}

// InputSpan implements kernels.Banded.
func (d *convData) InputSpan(i, lo, hi int) (int, int) { return d.geom.inputSpan(i, lo, hi) }

// OutputSpan implements kernels.Banded.
func (d *convData) OutputSpan(lo, hi int) (int, int) { return lo * d.outC, hi * d.outC }

// Bandable: DEPTHWISE_CONV_2D, like CONV_2D (on the byte GEMM, the same
// conditions for its GEMM).
func (d *dwData) Bandable(n *kernels.Node, threads int) bool {
	if c := d.conv; c != nil && (c.hybrid || c.dynamic || c.workers < threads || c.qbChanSplit(threads)) {
		return false
	}
	return n.Op == schema.OpDepthwiseConv2D && !d.hybrid && !d.dynamic && d.workers >= threads && d.rows > 0 && d.outC > 0
}

// InputSpan implements kernels.Banded.
func (d *dwData) InputSpan(i, lo, hi int) (int, int) { return d.geom.inputSpan(i, lo, hi) }

// OutputSpan implements kernels.Banded.
func (d *dwData) OutputSpan(lo, hi int) (int, int) { return lo * d.outC, hi * d.outC }

// inputSpan returns the elements of input i that output pixels [lo, hi)
// read: for the data input, the input rows their windows cover (exactly
// the same pixels for a 1×1 stride-1 convolution), for filters and bias
// everything.
func (g *geom) inputSpan(i, lo, hi int) (int, int) {
	if lo >= hi {
		return 0, 0
	}
	rowElems := g.inW * g.inC
	if i != 0 {
		return 0, int(^uint(0) >> 1)
	}
	if g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.padT == 0 && g.padL == 0 && g.inH == g.outH && g.inW == g.outW {
		return lo * g.inC, hi * g.inC
	}
	pix := g.outH * g.outW
	b0, b1 := lo/pix, (hi-1)/pix
	if b0 != b1 {
		return b0 * g.inH * rowElems, (b1 + 1) * g.inH * rowElems
	}
	oy0, oy1 := lo%pix/g.outW, (hi-1)%pix/g.outW
	iy0 := max(0, oy0*g.sh-g.padT)
	iy1 := min(g.inH, oy1*g.sh-g.padT+(g.kh-1)*g.dh+1)
	if iy0 >= iy1 {
		return 0, 0 // every tap in the padding
	}
	return (b0*g.inH + iy0) * rowElems, (b0*g.inH + iy1) * rowElems
}
