package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpShutdownTimeout bounds how long in-flight probe and scrape requests may finish at exit.
const httpShutdownTimeout = 5 * time.Second

// readiness says whether the daemon can do its work, and if not, why in a few words.
type readiness func() (ready bool, reason string)

// newHTTPHandler serves the probes and the metrics:
//   - /healthz answers 200 while the process runs (liveness: restart only a wedged process);
//   - /readyz answers 200 only when ready() says so, else 503 with the reason;
//   - /metrics exposes reg in the Prometheus format.
func newHTTPHandler(ready readiness, reg *prometheus.Registry, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, reason := ready()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, reason)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError),
		Registry: reg, // counts scrape errors
	}))
	return mux
}

// httpServer is the running HTTP endpoint.
type httpServer struct {
	srv  *http.Server
	done chan struct{} // closed once Serve has returned
}

// startHTTP binds addr at once, so that a port in use fails the start with a clear error, and
// serves h in a goroutine that stop waits for.
func startHTTP(addr string, h http.Handler, log *slog.Logger) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.listen: %w%s", err, inUseHint(err.Error(), "http.listen", "NOTIFIZZ_BRIDGE_HTTP_LISTEN"))
	}
	s := &httpServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		// Serve fails only if the listener breaks; the probes then fail too, which is how an
		// orchestrator learns of it, so logging it is enough.
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "error", err)
		}
	}()
	return s, nil
}

// stop lets in-flight requests finish (within httpShutdownTimeout) and waits for the serving
// goroutine to end.
func (s *httpServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	<-s.done
	return err
}
