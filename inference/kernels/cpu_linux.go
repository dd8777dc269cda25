package kernels

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// currentCPU returns the number of the CPU the calling thread runs on,
// or -1 if the kernel does not say (getcpu, about a hundred nanoseconds;
// buf is where the kernel writes it: a pool's field, so that nothing
// escapes to the heap).
func currentCPU(buf *uint32) int {
	if _, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(buf)), 0, 0); e != 0 {
		return -1
	}
	return int(*buf)
}
