package update

import (
	"errors"
	"fmt"
	"os"

	"github.com/edgefleet/edgefleet/agent/update/selfexec"
	"github.com/edgefleet/edgefleet/ota/selfupdate"
)

// ErrRestartNeeded means the previous binary was restored but this platform
// cannot exec it in place; the service manager must start the agent again.
var ErrRestartNeeded = errors.New("update: previous agent binary restored; restart edge-agent to run it")

// RecoverAtStartup undoes an agent update that was applied but never
// confirmed healthy: if the process died between selfupdate.Updater.Apply and
// the end of its Probe, DATA/selfupdate.json is still pending and the
// executable is the unconfirmed binary. It puts the previous binary back
// (selfupdate.Updater.Recover) and, since this process is still running the
// unconfirmed code, execs the restored binary with the same arguments and
// environment (Unix; elsewhere it returns ErrRestartNeeded). It reports
// whether it restored anything; it does not return if the exec succeeds.
//
// A process started as a health probe (selfupdate.HealthMarkerEnv set) is the
// update being checked, so it recovers nothing.
func RecoverAtStartup(dataDir string) (bool, error) {
	if os.Getenv(selfupdate.HealthMarkerEnv) != "" {
		return false, nil
	}
	exe, err := Executable()
	if err != nil {
		return false, fmt.Errorf("recover agent update: %w", err)
	}
	su := &selfupdate.Updater{TargetPath: exe, StateDir: dataDir}
	restored, err := su.Recover()
	if err != nil || !restored {
		return restored, err
	}
	fmt.Fprintf(os.Stderr, "edge-agent: an agent update was never confirmed healthy; restored the previous binary %s and restarting it\n", exe)
	if err := selfexec.Reexec(exe); err != nil {
		return true, fmt.Errorf("%w (%v)", ErrRestartNeeded, err)
	}
	return true, nil
}
