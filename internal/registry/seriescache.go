package registry

import (
	"strings"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

var _ convert.CachingValidator = (*Registry)(nil)

// DefinitionsToken identifies the compiled definitions in force
// (convert.CachingValidator): every change of the definitions publishes new
// ones, so a series the accumulator cached is checked again. The token keeps
// its definitions reachable, so it never compares equal to a later one.
func (r *Registry) DefinitionsToken() any { return r.compiled.Load() }

// ValidateValues runs the value checks of Validate (constraints: NaN,
// non_negative, min, max) for a record whose series passed Validate
// (convert.CachingValidator).
func (r *Registry) ValidateValues(m *pb.MetricData) *convert.Issue {
	c := (*r.compiled.Load())[m.Name]
	if c == nil {
		return nil
	}
	iss := c.checkValues(m, c.schema)
	if iss != nil {
		// m.Name may point into a request buffer (internal/grpccodec)
		r.rejects.add(strings.Clone(m.Name), r.now(), iss.Message)
	}
	return iss
}
