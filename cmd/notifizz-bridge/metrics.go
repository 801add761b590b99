package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/notifizz-bridge/notifizz-bridge/bridge"
)

// registerDaemonMetrics registers the daemon's own series on reg: notifizz_bridge_build_info,
// and notifizz_bridge_ready, which mirrors /readyz for alerting (a probe's answer is not a
// metric).
func registerDaemonMetrics(reg prometheus.Registerer, v versionInfo, api bridge.APIProfile, ready readiness) {
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "notifizz_bridge", Name: "build_info",
		Help: "Always 1; its labels say which build runs: version, revision (VCS), goversion and api (notifizz.api).",
	}, []string{"version", "revision", "goversion", "api"})
	revision := v.Revision
	if v.Modified && revision != "" {
		revision += "-dirty"
	}
	info.WithLabelValues(v.Version, revision, v.Go, string(api)).Set(1)
	reg.MustRegister(info, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "notifizz_bridge", Name: "ready",
		Help: "1 while /readyz answers 200, else 0.",
	}, func() float64 {
		if ok, _ := ready(); ok {
			return 1
		}
		return 0
	}))
}
