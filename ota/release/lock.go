package release

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// lockRepo serializes the writers of one repository across processes:
// fleet-server (agent releases from `fleetctl agents push`, the periodic
// Refresh) and `fleetctl models push` both load the metadata, change it and
// publish new versions; two at once could publish a timestamp pointing at
// the other's snapshot. It holds an exclusive advisory lock on
// repoDir/.lock (flock on Unix; elsewhere writers are not serialized across
// processes) until the returned function is called. The handler serves
// only metadata/ and targets/, so the lock file is never served.
func lockRepo(repoDir string) (func(), error) {
	if _, err := os.Stat(repoDir); errors.Is(err, os.ErrNotExist) {
		return func() {}, nil // nothing to protect: the caller reports the missing repository
	}
	f, err := os.OpenFile(filepath.Join(repoDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock repository: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock repository %s: %w", repoDir, err)
	}
	return func() { unlockFile(f); f.Close() }, nil
}
