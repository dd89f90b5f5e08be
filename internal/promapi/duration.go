package promapi

import (
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

func parseModelDuration(s string) (time.Duration, error) {
	d, err := model.ParseDuration(s)
	return time.Duration(d), err
}

// selectorParser parses match[] selectors.
var selectorParser = parser.NewParser(parser.Options{})
