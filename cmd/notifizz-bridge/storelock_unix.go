//go:build unix

package main

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on f without waiting. The kernel lets it go when the process
// ends, however it ends, so a crash leaves no stale lock. It returns errStoreLocked when another
// open file (of this process or another) holds it.
func lockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errStoreLocked
	}
	return err
}
