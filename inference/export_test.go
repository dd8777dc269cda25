package inference

// WithoutBands makes an interpreter run every node on its own (no
// kernels.Region), for A/B tests and benchmarks of the bands.
func WithoutBands() Option { return func(o *options) { o.noBands = true } }
