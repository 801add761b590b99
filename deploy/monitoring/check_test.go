package monitoring

import (
	"testing"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

func TestPlaceholder(t *testing.T) {
	_ = rulefmt.RuleGroups{}
	_, _ = parser.ParseExpr("up")
}
