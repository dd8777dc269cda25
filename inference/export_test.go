package inference

// WithoutBands makes an interpreter run every node on its own (no
// kernels.Region), for A/B tests and benchmarks of the bands.
func WithoutBands() Option { return func(o *options) { o.noBands = true } }

// ResidualModel returns a small int8 model of MobileNet-v2-like blocks
// (convolutions, depthwise convolutions, a residual ADD) whose nodes run
// as a band on two threads.
func ResidualModel() ([]byte, error) { return residualModelBytes() }
