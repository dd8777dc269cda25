package simulate

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// fdsPerDevice is what one simulated device holds open: its MQTT
// connection, plus headroom for HTTP downloads and enrollment.
const fdsPerDevice = 1

// fdHeadroom covers the HTTP connection pools, the spawned server's log and
// the Go runtime.
const fdHeadroom = 512

// checkFileLimit fails early with a clear message when the process may not
// open enough file descriptors for the devices (the Go runtime already
// raises the soft limit to the hard limit at start, so only the hard limit
// matters: raise it with `ulimit -Hn` / LimitNOFILE).
func checkFileLimit(devices int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // unknown: let the connects tell
	}
	need := uint64(devices*fdsPerDevice + fdHeadroom)
	if lim.Cur >= need {
		return nil
	}
	if lim.Max >= need {
		lim.Cur = need
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
			return nil
		}
	}
	return fmt.Errorf("simulate: %d devices need about %d open files, the limit is %d (hard %d): raise it (ulimit -n %d, as root ulimit -Hn) for this shell and the server",
		devices, need, lim.Cur, lim.Max, need)
}

// loadAverage returns /proc/loadavg's 1/5/15-minute averages ("" where
// unavailable): the machine's load is part of every measurement.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
