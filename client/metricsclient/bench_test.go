package metricsclient_test

import (
	"context"
	"testing"
	"time"

	"github.com/metricsmodule/metricsmodule/client/metricsclient"
	"github.com/metricsmodule/metricsmodule/client/metricstest"
)

// The app-side cost of recording: what a call costs the caller, the flusher
// sending to an in-process fake in the background.

func benchClient(b *testing.B) *metricsclient.Client {
	srv := metricstest.NewServer(b)
	cl := metricsclient.NewFromConn(srv.Conn(), metricsclient.WithFlushInterval(100*time.Millisecond))
	b.Cleanup(func() { _ = cl.Close(context.Background()) })
	return cl
}

func BenchmarkCounterAdd(b *testing.B) {
	c := benchClient(b).Counter("http_requests_total", metricsclient.WithLabels("method", "code")).With("GET", "200")
	b.ReportAllocs()
	for b.Loop() {
		c.Add(1)
	}
}

func BenchmarkCounterWithAdd(b *testing.B) {
	c := benchClient(b).Counter("http_requests_total", metricsclient.WithLabels("method", "code"))
	b.ReportAllocs()
	for b.Loop() {
		c.With("GET", "200").Add(1)
	}
}

func BenchmarkCounterWithAddParallel(b *testing.B) {
	c := benchClient(b).Counter("http_requests_total", metricsclient.WithLabels("method", "code"))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.With("GET", "200").Add(1)
		}
	})
}

func BenchmarkGaugeSet(b *testing.B) {
	g := benchClient(b).Gauge("queue_depth", metricsclient.WithLabels("queue")).With("mail")
	b.ReportAllocs()
	for b.Loop() {
		g.Set(3)
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	h := benchClient(b).Histogram("response_size_bytes", metricsclient.WithLabels("route")).With("/a")
	b.ReportAllocs()
	for b.Loop() {
		h.Observe(512)
	}
}

func BenchmarkTimerObserve(b *testing.B) {
	tm := benchClient(b).Timer("db_query_seconds", metricsclient.WithLabels("table"))
	b.ReportAllocs()
	for b.Loop() {
		tm.With("users").Observe(3 * time.Millisecond)
	}
}
