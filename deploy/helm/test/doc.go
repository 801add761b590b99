// Package test renders the notifizz-bridge Helm chart with helm template for a matrix of values
// and decodes every object it produces strictly (an unknown field fails) into the Kubernetes
// and prometheus-operator API types, so that the chart is checked without a cluster. It is a
// module of its own so that the bridge's module does not depend on the Kubernetes API.
package test
