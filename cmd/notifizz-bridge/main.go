package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// main only wires the process to the CLI: signals, standard streams and the exit code.
func main() {
	os.Exit(realMain())
}

// realMain runs the command line and returns the exit code. The first SIGINT or SIGTERM
// cancels the command's context, which makes run shut down gracefully; a second one returns at
// once, abandoning the shutdown, for an operator who will not wait.
func realMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	done := make(chan int, 1)
	go func() {
		done <- cli(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	}()
	received := 0
	for {
		select {
		case code := <-done:
			return code
		case <-sigs:
			if received++; received >= 2 {
				fmt.Fprintln(os.Stderr, "notifizz-bridge: second signal, exiting without finishing the shutdown")
				return exitForced
			}
		}
	}
}
