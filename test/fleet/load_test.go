package fleet

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// loadMetric is the counter the load increments.
const loadMetric = "fleet_load_total"

// load is a steady stream of counter increments spread round robin over
// the nodes by several workers. Each worker sends one request at a time:
// +1 on each of its keys (one series per worker and key), with a request
// id. A failed request is retried with the same id on the next node. Each
// node counts its own running total of a series, so what a node applied
// of a worker's series is 1, 2, 3, ...: the values every destination and
// stream must see.
type load struct {
	nodes    []*node
	workers  int
	keys     int
	interval time.Duration

	mu sync.Mutex
	// acked counts the acknowledged requests of each worker on each node.
	acked map[[2]int]int
	// ambiguous counts the requests of each worker that failed on each node
	// in a way that may have been applied there (the answer was lost: the
	// node was killed, a deadline passed) and were retried on another node:
	// the documented at-least-once case (request ids are remembered per
	// node), so each is the slack of one increment on that node's total.
	ambiguous map[[2]int]int
	// refused counts the attempts a node could not have applied (the
	// connection was refused: the node was down), retried on another node.
	refused int
	total   int   // acknowledged requests
	failure error // an unexpected answer, which ends the load

	stop chan struct{}
	wg   sync.WaitGroup

	started, stopped time.Time
}

func startLoad(nodes []*node, workers, keys int, interval time.Duration) *load {
	l := &load{nodes: nodes, workers: workers, keys: keys, interval: interval,
		acked: map[[2]int]int{}, ambiguous: map[[2]int]int{}, stop: make(chan struct{}), started: time.Now()}
	for w := range workers {
		l.wg.Go(func() { l.worker(w) })
	}
	return l
}

func (l *load) worker(w int) {
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	metrics := make([]*pb.MetricData, l.keys)
	for k := range metrics {
		metrics[k] = &pb.MetricData{Name: loadMetric, Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1,
			Labels: map[string]string{"worker": "w" + strconv.Itoa(w), "key": "k" + strconv.Itoa(k)}}
	}
	for seq := 0; ; seq++ {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		req := &pb.RecordBatchMetricsRequest{
			RequestId: fmt.Sprintf("w%d-%d", w, seq),
			Resource:  &pb.Resource{Attributes: map[string]string{"service.name": "fleet-load"}},
			Metrics:   metrics,
		}
		if !l.send(w, seq, req) {
			return
		}
	}
}

// send delivers one request, round robin from the worker's next node and
// on to the following ones until one acknowledges it (within a minute).
func (l *load) send(w, seq int, req *pb.RecordBatchMetricsRequest) bool {
	deadline := time.Now().Add(time.Minute)
	for attempt := 0; ; attempt++ {
		n := (w + seq + attempt) % len(l.nodes)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := l.nodes[n].api.RecordBatchMetrics(ctx, req)
		cancel()
		l.mu.Lock()
		switch {
		case err == nil && resp.GetAcceptedCount() == uint32(l.keys):
			l.acked[[2]int{w, n}]++
			l.total++
			l.mu.Unlock()
			return true
		case err == nil:
			l.failure = fmt.Errorf("request %s on %s: %d of %d items accepted: %v", req.RequestId, l.nodes[n].name, resp.GetAcceptedCount(), l.keys, resp.GetResults())
			l.mu.Unlock()
			return false
		case status.Code(err) == codes.Unavailable && strings.Contains(err.Error(), "connection refused"):
			l.refused++
		default:
			l.ambiguous[[2]int{w, n}]++
		}
		if time.Now().After(deadline) {
			l.failure = fmt.Errorf("request %s: no node acknowledged it within a minute; last error on %s: %w", req.RequestId, l.nodes[n].name, err)
			l.mu.Unlock()
			return false
		}
		l.mu.Unlock()
		if attempt%len(l.nodes) == len(l.nodes)-1 { // every node failed: wait a little before the next round
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// acknowledged returns the acknowledged requests.
func (l *load) acknowledged() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// ackedOn returns the acknowledged requests on node n.
func (l *load) ackedOn(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	sum := 0
	for w := range l.workers {
		sum += l.acked[[2]int{w, n}]
	}
	return sum
}

// err is the unexpected answer that ended a worker, if any.
func (l *load) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failure
}

// finish stops the workers after their requests in flight were
// acknowledged.
func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
	l.stopped = time.Now()
}

// bounds returns what node n may have applied of worker w's series: at
// least every acknowledged request, at most also every ambiguous one.
func (l *load) bounds(w, n int) (lo, hi int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked[[2]int{w, n}], l.acked[[2]int{w, n}] + l.ambiguous[[2]int{w, n}]
}

// ambiguousTotal returns all ambiguous retries.
func (l *load) ambiguousTotal() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	sum := 0
	for _, v := range l.ambiguous {
		sum += v
	}
	return sum
}
