//go:build !unix

package selfexec

func reexec(string) error { return ErrRestartNeeded }
