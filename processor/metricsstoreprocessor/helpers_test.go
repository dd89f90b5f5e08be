package metricsstoreprocessor

import "github.com/prometheus/prometheus/model/labels"

func mustEqual(name string) *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name)
}
