package fleet

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/metricsmodule/metricsmodule/test/childcollector"
	"github.com/metricsmodule/metricsmodule/test/e2e"
)

func TestMain(m *testing.M) {
	// the fleet's collector processes are this test binary, run again
	childcollector.RunIfChild(e2e.Components, e2e.ConverterFactories())
	goleak.VerifyTestMain(m)
}
