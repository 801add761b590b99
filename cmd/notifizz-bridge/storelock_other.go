//go:build !unix

package main

import "os"

// lockFile does not lock on this platform: two daemons sharing a store directory are not
// detected here (see docs/RELIABILITY.md).
func lockFile(*os.File) error { return nil }
