//go:build unix

package selfexec

import (
	"fmt"
	"os"
	"syscall"
)

func reexec(exe string) error {
	if err := syscall.Exec(exe, os.Args, os.Environ()); err != nil {
		return fmt.Errorf("%w: exec %s: %v", ErrRestartNeeded, exe, err)
	}
	return nil
}
