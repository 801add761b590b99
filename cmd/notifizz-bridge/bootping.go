package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/notifizz-bridge/notifizz-bridge/bridge"
	"github.com/notifizz-bridge/notifizz-bridge/internal/config"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// bootPing is the SDKs 2.x boot ping (notifizz.Client.Ping), made once in a goroutine of its
// own when the daemon starts, so that it never delays readiness. It is best-effort: its outcome
// is only logged, info when it succeeded, warn when it failed (the client's errors carry no
// secret). The daemon owns it through stop, which it defers.
type bootPing struct {
	cancel context.CancelFunc
	done   chan struct{} // closed once the ping has ended, at once when there is none
}

// startBootPing starts the ping when the profile is v2 and the run is not a dry run; otherwise
// the bootPing it returns has nothing to do. The ping is bounded by notifizz.PingTimeout, and by
// ctx.
func startBootPing(ctx context.Context, cfg config.Config, c *notifizz.Client, log *slog.Logger) *bootPing {
	ctx, cancel := context.WithCancel(ctx)
	p := &bootPing{cancel: cancel, done: make(chan struct{})}
	if cfg.Bridge.API != bridge.APIv2 || cfg.Notifizz.DryRun {
		close(p.done)
		return p
	}
	go func() {
		defer close(p.done)
		start := time.Now()
		if err := c.Ping(ctx); err != nil {
			var apiErr *notifizz.APIError
			switch {
			case ctx.Err() != nil: // a ping cut short by a stop is no failure
			case errors.As(err, &apiErr) && (apiErr.StatusCode == http.StatusUnauthorized || apiErr.StatusCode == http.StatusForbidden):
				// Said at once, before any traffic: the first call will pause the bridge.
				log.Error("notifizz boot ping: the notifizz api refuses the key (notifizz.sdkSecretKey rotated or revoked?); "+
					"calls will pause until it is accepted", "status", apiErr.StatusCode, "error", err)
			default:
				log.Warn("notifizz boot ping failed; the bridge runs on", "error", err)
			}
			return
		}
		log.Info("notifizz boot ping ok", "duration", time.Since(start))
	}()
	return p
}

// stop cancels the ping if it is still running and waits until its goroutine has returned, so
// that a stopping daemon never waits for the API.
func (p *bootPing) stop() {
	p.cancel()
	<-p.done
}
