package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command: flags, signals, the load run and its report. It returns the exit
// code: 0 when every check passed, 1 when one failed or the run could not finish, 2 for a usage
// error.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if err == errHelp {
			return 0
		}
		fmt.Fprintln(stderr, "notifizz-load:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep, err := Run(ctx, cfg, stderr)
	if rep != nil {
		if werr := writeReport(rep, cfg, stdout); werr != nil {
			fmt.Fprintln(stderr, "notifizz-load:", werr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "notifizz-load:", err)
		return 1
	}
	if len(rep.Failures) > 0 {
		for _, f := range rep.Failures {
			fmt.Fprintln(stderr, "notifizz-load: FAIL:", f)
		}
		return 1
	}
	return 0
}
