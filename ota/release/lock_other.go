//go:build !unix

package release

import "os"

func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) {}
