package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
)

// Environment variables that make run write profiles of the daemon, for performance work (see
// docs/PERFORMANCE.md): a CPU profile from start to exit, and an allocation profile (every
// allocation since start, and the heap in use) at exit. Unset, nothing is profiled.
const (
	envCPUProfile = "NOTIFIZZ_BRIDGE_CPUPROFILE"
	envMemProfile = "NOTIFIZZ_BRIDGE_MEMPROFILE"
)

// startProfiles starts what the environment asks for; stop writes the profiles and reports
// what it could not write.
func startProfiles() (stop func() error, err error) {
	var stops []func() error
	if path := os.Getenv(envCPUProfile); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envCPUProfile, err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("%s: %w", envCPUProfile, err)
		}
		stops = append(stops, func() error {
			pprof.StopCPUProfile()
			return f.Close()
		})
	}
	if path := os.Getenv(envMemProfile); path != "" {
		stops = append(stops, func() error {
			f, err := os.Create(path)
			if err != nil {
				return fmt.Errorf("%s: %w", envMemProfile, err)
			}
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				_ = f.Close()
				return fmt.Errorf("%s: %w", envMemProfile, err)
			}
			return f.Close()
		})
	}
	return func() error {
		var errs []error
		for _, s := range stops {
			errs = append(errs, s())
		}
		return errors.Join(errs...)
	}, nil
}
