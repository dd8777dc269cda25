//go:build !linux

package kernels

// currentCPU returns -1: the CPU a thread runs on is not known here, so
// a pool's threads take their parts by worker index (see Pool.chunks).
func currentCPU(*uint32) int { return -1 }
