package metricstest_test

import (
	"context"
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/client/metricsclient"
	"github.com/metricsmodule/metricsmodule/client/metricstest"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// handleCheckout is application code under test: it counts orders.
func handleCheckout(orders *metricsclient.Counter, method string) {
	orders.With(method).Inc()
}

// An application test: record through the SDK, flush, assert on the fake.
func Example() {
	srv := metricstest.Start()
	defer srv.Stop()
	ctx := context.Background()
	cl := metricsclient.NewFromConn(srv.Conn())
	orders := cl.Counter("orders_total", metricsclient.WithLabels("payment"))
	handleCheckout(orders, "card")
	handleCheckout(orders, "card")
	handleCheckout(orders, "invoice")
	_ = cl.Close(ctx) // flushes

	fmt.Println(srv.Total("orders_total", map[string]string{"payment": "card"}))
	fmt.Println(srv.Total("orders_total", nil))
	fmt.Println(srv.Names())
	// Output:
	// 2
	// 3
	// [orders_total]
}

// A lost answer: the server applied the batch, the client saw UNAVAILABLE and
// sent it again with the same request id; it is applied once.
func ExampleServer_LoseNextAnswer() {
	srv := metricstest.Start()
	defer srv.Stop()
	cl := metricsclient.NewFromConn(srv.Conn())
	srv.LoseNextAnswer(status.Error(codes.Unavailable, "connection reset"))
	cl.Counter("jobs_total").Add(5)
	_ = cl.Close(context.Background())
	fmt.Println(srv.Total("jobs_total", nil), srv.Calls(), cl.Stats().Duplicates)
	// Output: 5 2 1
}

// The fake refuses what the server surely refuses, with the field.
func ExampleServer_RecordMetric() {
	srv := metricstest.Start()
	defer srv.Stop()
	api := pb.NewMetricsServiceClient(srv.Conn())
	_, err := api.RecordMetric(context.Background(), &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "x"}})
	fmt.Println(status.Code(err))
	// Output: InvalidArgument
}

func TestAssertHelpersFail(t *testing.T) {
	srv := metricstest.NewServer(t)
	cl := metricsclient.NewFromConn(srv.Conn())
	cl.Gauge("g").Set(2)
	cl.Histogram("h").Observe(1)
	if err := cl.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ft := &testing.T{}
	if srv.AssertCounter(ft, "missing_total", nil, 1) || srv.AssertGauge(ft, "g", nil, 3) || srv.AssertObservations(ft, "h", nil, 2) {
		t.Fatal("assertions on wrong values passed")
	}
	if !srv.AssertGauge(t, "g", nil, 2) || !srv.AssertObservations(t, "h", nil, 1) {
		t.Fatal("assertions on right values failed")
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
