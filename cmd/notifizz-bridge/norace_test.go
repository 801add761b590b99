//go:build !race

package main

// raceEnabled says the tests run with the race detector, so the daemon is built with it too.
const raceEnabled = false
