package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/client/streamclient"
	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// spooledProviders says whether the nodes run with the providers' durable
// spool (testdata/fleet-spool.yaml, which also takes the batch processor
// out of the pipeline: it answers before the providers exporter has the
// batch). With it a SIGKILLed node delivers every value it acknowledged
// after its restart, each at least once (a replay may repeat the batches in
// flight at the kill). Without it (false) what the killed node acknowledged
// but had not exported is lost: the batch processor and the provider queues
// are in memory; the test then holds the killed node's totals at the
// destinations to "no value that was never a total, none twice, and the
// final total arrives"; the other nodes' must be exact either way.
const spooledProviders = true

// spoolOverlay is the recipe's spool file.
var spoolOverlay = []string{"file:" + filepath.Join("..", "..", "testdata", "fleet-spool.yaml")}

const (
	waitConverge = 20 * time.Second // a registry change on every node, a node back, a drain
	poll         = 20 * time.Millisecond
)

// TestFleetOfThreeProcessesUnderLoad runs the README's fleet (three
// collector processes from testdata/config.yaml and the fleet-*.yaml
// overlays, a three-member etcd cluster, VictoriaMetrics as the shared
// store, nats-server for streams, all on loopback) under a steady load of
// counter increments spread round robin over the nodes, and meanwhile:
// creates, updates (blue-green, to another destination) and deletes
// providers through different nodes, kills the etcd leader and creates a
// provider while it is down, SIGKILLs a node and restarts it, and moves a
// stream subscriber from the killed node to another one with its resume
// token. Then every node reads back the exact totals, each destination has
// every running total of every node exactly once (the killed node's:
// see spooledProviders), and the moved subscriber has what a subscriber
// that never moved has.
func TestFleetOfThreeProcessesUnderLoad(t *testing.T) {
	began := time.Now()
	etcd := testpeer.StartEtcdCluster(t, 3)
	vm := testpeer.VictoriaMetrics(t)
	natsPeer := testpeer.Start(t, testpeer.Config{
		Binary: "nats-server",
		Args: func(a string) []string {
			host, port, _ := net.SplitHostPort(a)
			return []string{"-js", "-a", host, "-p", port, "-sd", t.TempDir()}
		},
	})
	p := peers{sharedStore: vm.URL(), natsURL: "nats://" + natsPeer.Addr, etcd: etcd.Endpoints()}
	nodes := make([]*node, 3)
	for i := range nodes {
		nodes[i] = startNode(t, "node-"+strconv.Itoa(i+1), t.TempDir(), p)
	}
	t.Logf("peers and three nodes up in %v", time.Since(began).Round(time.Millisecond))
	const killed = 2 // node-3
	ctx := context.Background()

	sinkA, sinkB, sinkC, sinkD, sinkE := startSink(t, "A"), startSink(t, "B"), startSink(t, "C"), startSink(t, "D"), startSink(t, "E")
	// p1 lives through everything, created before the load through node-1
	create(t, nodes[0], otlpProvider("p1", sinkA))
	waitProviders(t, nodes, map[string]uint64{"p1": 1})

	// streams: a reference subscriber on node-1 and one on node-3 that moves
	reference := subscribe(t, nodes[0], "reference", nil)
	mover := subscribe(t, nodes[killed], "mover", nil)
	require.Eventually(t, func() bool { return reference.opened() && mover.opened() }, waitConverge, poll)

	l := startLoad(nodes, 4, 4, 10*time.Millisecond)
	stopped := false
	defer func() {
		if !stopped {
			l.finish()
		}
	}()
	waitAcked := func(n int, what string) {
		t.Helper()
		want := l.acknowledged() + n
		require.Eventually(t, func() bool { return l.acknowledged() >= want || l.err() != nil }, time.Minute, poll, "load: %d requests %s", n, what)
		require.NoError(t, l.err())
	}
	waitAcked(1000, "before the first change")

	// p2 created through node-3, p3 through node-2, during the load
	create(t, nodes[killed], otlpProvider("p2", sinkB))
	create(t, nodes[1], otlpProvider("p3", sinkD))
	waitProviders(t, nodes, map[string]uint64{"p1": 1, "p2": 1, "p3": 1})
	waitAcked(1000, "with p2 and p3")

	// p3 deleted through node-1 (graceful: drained), p2 updated blue-green
	// through node-2 to another destination (node-2 verifies the candidate,
	// which gets a copy of node-2's data meanwhile; the other nodes switch
	// when they see the new version, starting the new exporter before the
	// old one drains)
	del(t, nodes[0], "p3")
	updateStart := time.Now()
	upd := update(t, nodes[1], &pb.UpdateProviderRequest{ProviderId: "p2", Config: otlpProvider("p2", sinkC),
		Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_BLUE_GREEN, VerifyPeriod: durationpb.New(2 * time.Second)})
	require.False(t, upd.GetRolledBack(), "blue-green update rolled back: %s", upd.GetMessage())
	t.Logf("blue-green update of p2 (verify 2s) took %v: %s", time.Since(updateStart).Round(time.Millisecond), upd.GetMessage())
	waitProviders(t, nodes, map[string]uint64{"p1": 1, "p2": 2})
	waitAcked(1000, "after the update")

	// the etcd leader killed: p4 created through node-3 meanwhile; the
	// member back, the fleet agrees
	leader := etcdLeader(t, etcd.Endpoints())
	etcd.Kill(leader)
	etcdDown := time.Now()
	create(t, nodes[killed], otlpProvider("p4", sinkE))
	waitProviders(t, nodes, map[string]uint64{"p1": 1, "p2": 2, "p4": 1})
	t.Logf("etcd leader m%d killed: p4 created and running on every node after %v", leader, time.Since(etcdDown).Round(time.Millisecond))
	for _, n := range nodes {
		require.Eventually(t, n.registryServing, waitConverge, poll, "%s: registry healthy with two etcd members of three", n.name)
	}
	waitAcked(500, "with an etcd member down")
	etcd.Start(leader)
	etcd.WaitHealthy(leader)
	for _, n := range nodes {
		require.Eventually(t, n.registryServing, waitConverge, poll, "%s: registry healthy with every etcd member back", n.name)
	}
	waitProviders(t, nodes, map[string]uint64{"p1": 1, "p2": 2, "p4": 1})

	// node-3 killed (SIGKILL) during the load; the subscriber moves to node-2
	beforeKill := l.ackedOn(killed)
	nodes[killed].proc.Stop(syscall.SIGKILL)
	killedAt := time.Now()
	mover.stop()
	token := mover.client.LastSequence()
	moved := subscribe(t, nodes[1], "mover", &token)
	waitAcked(500, "with node-3 down")
	nodes[killed].proc.Start()
	t.Logf("node-3 SIGKILLed after %d acknowledged requests, serving again after %v", beforeKill, time.Since(killedAt).Round(time.Millisecond))
	waitProviders(t, nodes, map[string]uint64{"p1": 1, "p2": 2, "p4": 1})
	back := l.ackedOn(killed)
	require.Eventually(t, func() bool { return l.ackedOn(killed) >= back+300 || l.err() != nil }, time.Minute, poll, "node-3 takes load again")
	require.NoError(t, l.err())

	l.finish()
	stopped = true
	require.NoError(t, l.err())
	acked := l.acknowledged()
	dur := l.stopped.Sub(l.started)
	t.Logf("load: %d requests (%d points) acknowledged in %v (%.0f requests/s, %.0f points/s); %d ambiguous retries, %d refused attempts",
		acked, acked*l.keys, dur.Round(time.Millisecond), float64(acked)/dur.Seconds(), float64(acked*l.keys)/dur.Seconds(), l.ambiguousTotal(), l.refused)

	// the truth: each node's running total of each series, from the shared store
	flush, err := httpClient.Post(vm.URL()+"/internal/force_flush", "", nil)
	require.NoError(t, err)
	require.NoError(t, flush.Body.Close())
	truth := map[seriesKey]float64{}
	var mismatch string
	why := &note{}
	require.Eventually(t, func() bool {
		v, err := promVector(vm.URL(), loadMetric, "worker", "key", "collector_instance")
		if err != nil || len(v) != l.workers*l.keys*len(nodes) {
			why.set(fmt.Sprintf("%d series, %v", len(v), err))
			return false
		}
		clear(truth)
		mismatch = ""
		for w := range l.workers {
			for k := range l.keys {
				for n, nd := range nodes {
					key := seriesKey{"w" + strconv.Itoa(w), "k" + strconv.Itoa(k), nd.name}
					lo, hi := l.bounds(w, n)
					got, ok := v[key.worker+"/"+key.key+"/"+key.instance]
					if !ok || got < float64(lo) || got > float64(hi) {
						mismatch += fmt.Sprintf("%s: %v not in [%d, %d]; ", key, got, lo, hi)
					}
					truth[key] = got
				}
			}
		}
		why.set(mismatch)
		return mismatch == ""
	}, waitConverge, poll, "every node's running total in the shared store is what it acknowledged (plus at most its ambiguous retries): %s", why)
	fleet := map[string]float64{} // worker/key -> the fleet's total
	var sum float64
	for k, v := range truth {
		fleet[k.worker+"/"+k.key] += v
		sum += v
	}
	require.GreaterOrEqual(t, sum, float64(acked*l.keys))
	require.LessOrEqual(t, sum, float64((acked+l.ambiguousTotal())*l.keys))
	t.Logf("shared store: %v increments in all, %d acknowledged, %v beyond (retries after a lost answer)", sum, acked*l.keys, sum-float64(acked*l.keys))

	// reads from every node: exact
	for _, n := range nodes {
		require.Eventually(t, func() bool {
			v, err := promVector("http://"+n.addr("22"), `sum without (collector_instance) (`+loadMetric+`)`, "worker", "key")
			return err == nil && assert.ObjectsAreEqual(fleet, v)
		}, waitConverge, poll, "%s: Prometheus API", n.name)
		q, err := n.api.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `sum without (collector_instance) (` + loadMetric + `)`})
		require.NoError(t, err)
		got := map[string]float64{}
		for _, s := range q.GetSeries() {
			require.NotEmpty(t, s.GetSamples())
			got[s.GetLabels()["worker"]+"/"+s.GetLabels()["key"]] = s.GetSamples()[len(s.GetSamples())-1].GetValue()
		}
		assert.Equal(t, fleet, got, "%s: QueryMetrics", n.name)
		gm, err := n.api.GetMetrics(ctx, &pb.GetMetricsRequest{
			Filter: &pb.MetricFilter{Names: []string{loadMetric}}, LatestOnly: true,
			TimeRange: &pb.TimeRange{Start: timestamppb.New(began.Add(-time.Minute)), End: timestamppb.New(time.Now().Add(time.Minute))},
		})
		require.NoError(t, err)
		got = map[string]float64{}
		for _, s := range gm.GetSeries() {
			assert.NotContains(t, s.GetLabels(), "collector_instance", "GetMetrics merges the nodes' series")
			require.Len(t, s.GetSamples(), 1)
			got[s.GetLabels()["worker"]+"/"+s.GetLabels()["key"]] = s.GetSamples()[0].GetValue()
		}
		assert.Equal(t, fleet, got, "%s: GetMetrics", n.name)
	}

	// the destinations
	isKilled := func(k seriesKey) bool { return k.instance == nodes[killed].name }
	lastArrived := func(s *sink) func() bool {
		return func() bool {
			vals, _ := s.snapshot()
			got := maxOf(vals)
			for k, v := range truth {
				if got[k] != v {
					return false
				}
			}
			return true
		}
	}
	for _, s := range []*sink{sinkA, sinkC, sinkE} {
		require.Eventually(t, lastArrived(s), waitConverge, poll, "sink %s: every node's final total arrives", s.name)
	}
	a, aPoints := sinkA.snapshot()
	b, bPoints := sinkB.snapshot()
	c, cPoints := sinkC.snapshot()
	d, dPoints := sinkD.snapshot()
	e, ePoints := sinkE.snapshot()
	t.Logf("destination points: A (p1) %d, B (p2 v1) %d, C (p2 v2) %d, D (p3) %d, E (p4) %d", aPoints, bPoints, cPoints, dPoints, ePoints)
	var lostAtKill, bothBG int
	for _, k := range sortedKeys(truth) {
		final := truth[k]
		if !isKilled(k) || spooledProviders {
			// p1 from the first increment, p4 from when it started on the node: every value once
			checkRun(t, "p1 "+k.String(), a[k], 1, final, !isKilled(k))
			checkRun(t, "p4 "+k.String(), e[k], minOf(e[k]), final, !isKilled(k))
			// p2: destination B until the update, C from it: together every
			// value from when p2 started, each once at each destination; both
			// during the blue-green verification (the candidate gets a copy)
			union := map[float64]int{}
			for v := range b[k] {
				union[v]++
			}
			for v := range c[k] {
				union[v]++
			}
			for v, n := range b[k] {
				assert.True(t, n == 1 || isKilled(k), "p2 at B %s: value %v %d times", k, v, n)
			}
			for v, n := range c[k] {
				assert.True(t, n == 1 || isKilled(k), "p2 at C %s: value %v %d times", k, v, n)
			}
			checkCovered(t, "p2 "+k.String(), union, minOf(b[k]), final)
			for v := range b[k] {
				if c[k][v] > 0 {
					bothBG++
				}
			}
		} else {
			// the killed node: nothing that was not applied, nothing twice, the final total arrives
			for name, got := range map[string]map[float64]int{"p1": a[k], "p4": e[k], "p2 at C": c[k]} {
				for v, n := range got {
					assert.True(t, v >= 1 && v <= final && v == math.Trunc(v), "%s %s: value %v was never a total", name, k, v)
					assert.Equal(t, 1, n, "%s %s: value %v %d times", name, k, v, n)
				}
				assert.Contains(t, got, final, "%s %s: the final total", name, k)
			}
			lostAtKill += int(final) - len(a[k])
		}
		// p3 (deleted before the kill): every value from when it started to when it stopped, once
		if len(d[k]) > 0 {
			checkRun(t, "p3 "+k.String(), d[k], minOf(d[k]), maxOfValues(d[k]), true)
		} else {
			t.Errorf("p3 %s: nothing arrived", k)
		}
	}
	t.Logf("p1: %d running totals of node-3 lost at its SIGKILL (acknowledged, not yet exported); p2: %d values at both B and C (the blue-green verification's copy)", lostAtKill, bothBG)

	// the stream: the subscriber that moved has what the reference has, each sequence once
	var want int
	for k, v := range truth {
		if !isKilled(k) {
			want += int(v)
		}
	}
	require.Eventually(t, func() bool {
		return reference.nonKilledValues(nodes[killed].name) >= want && moved.lastSeq() == reference.lastSeq()
	}, waitConverge, poll, "the streams deliver every running total of the nodes that were not killed")
	refSeqs, refValues := reference.got()
	moverSeqs, moverValues := mover.got()
	movedSeqs, movedValues := moved.got()
	assert.Equal(t, refSeqs, append(moverSeqs, movedSeqs...), "the moved subscriber resumed without a gap: the same sequences, each once")
	all := map[seriesKey]map[float64]int{}
	for _, m := range []map[seriesKey]map[float64]int{moverValues, movedValues} {
		for k, vs := range m {
			if all[k] == nil {
				all[k] = map[float64]int{}
			}
			for v, n := range vs {
				all[k][v] += n
			}
		}
	}
	assert.Equal(t, refValues, all, "the moved subscriber has every value the reference has")
	for _, k := range sortedKeys(truth) {
		if !isKilled(k) {
			checkRun(t, "stream "+k.String(), refValues[k], 1, truth[k], true)
		}
	}
	var streamLost int
	for _, k := range sortedKeys(truth) {
		if isKilled(k) {
			for v, n := range refValues[k] {
				assert.True(t, v >= 1 && v <= truth[k] && v == math.Trunc(v), "stream %s: value %v was never a total", k, v)
				assert.Equal(t, 1, n, "stream %s: value %v %d times", k, v, n)
			}
			streamLost += int(truth[k]) - len(refValues[k])
		}
	}
	t.Logf("stream: %d batches; subscriber moved at sequence %d; %d running totals of node-3 not published at its SIGKILL; whole test %v",
		len(refSeqs), token, streamLost, time.Since(began).Round(time.Millisecond))
}

// checkRun checks that got holds every value from..to (each exactly once
// when exact, at least once otherwise) and nothing else.
func checkRun(t *testing.T, what string, got map[float64]int, from, to float64, exact bool) {
	t.Helper()
	var missing, twice []float64
	for v := from; v <= to; v++ {
		switch n := got[v]; {
		case n == 0:
			missing = append(missing, v)
		case n > 1 && exact:
			twice = append(twice, v)
		}
	}
	var outside []float64
	for v := range got {
		if v < from || v > to || v != math.Trunc(v) {
			outside = append(outside, v)
		}
	}
	assert.Empty(t, missing, "%s: values %v..%v: missing", what, from, to)
	assert.Empty(t, twice, "%s: values %v..%v: more than once", what, from, to)
	assert.Empty(t, outside, "%s: values %v..%v: others", what, from, to)
}

// checkCovered checks that got holds every value from..to and nothing else.
func checkCovered(t *testing.T, what string, got map[float64]int, from, to float64) {
	t.Helper()
	checkRun(t, what, got, from, to, false)
}

func minOf(vs map[float64]int) float64 {
	m := math.Inf(1)
	for v := range vs {
		m = min(m, v)
	}
	return m
}

func maxOfValues(vs map[float64]int) float64 {
	m := math.Inf(-1)
	for v := range vs {
		m = max(m, v)
	}
	return m
}

// retryable are the refusals of a registry change a client retries: etcd
// electing a leader or unreachable (UNAVAILABLE), a resync after a refused
// write (FAILED_PRECONDITION), a concurrent change (ABORTED).
var retryable = []codes.Code{codes.Unavailable, codes.FailedPrecondition, codes.Aborted, codes.DeadlineExceeded}

func retry(t *testing.T, what string, call func(ctx context.Context) error) {
	t.Helper()
	var last error
	why := &note{}
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		last = call(ctx)
		why.set(fmt.Sprint(last))
		return last == nil || !slices.Contains(retryable, status.Code(last))
	}, time.Minute, 50*time.Millisecond, "%s: last error %s", what, why)
	require.NoError(t, last, what)
}

func create(t *testing.T, n *node, cfg *pb.ProviderConfig) {
	t.Helper()
	retry(t, "create "+cfg.GetProviderId()+" through "+n.name, func(ctx context.Context) error {
		_, err := n.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: cfg, AutoStart: true})
		return err
	})
}

func del(t *testing.T, n *node, id string) {
	t.Helper()
	retry(t, "delete "+id+" through "+n.name, func(ctx context.Context) error {
		r, err := n.mgmt.DeleteMetricsProvider(ctx, &pb.DeleteProviderRequest{ProviderId: id, CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_GRACEFUL})
		if status.Code(err) == codes.NotFound {
			return nil // a retry of a delete that was applied
		}
		if err == nil && r.GetState() == pb.ProviderState_PROVIDER_STATE_DRAINING {
			return status.Error(codes.DeadlineExceeded, "still draining")
		}
		return err
	})
}

func update(t *testing.T, n *node, req *pb.UpdateProviderRequest) *pb.UpdateProviderResponse {
	t.Helper()
	var resp *pb.UpdateProviderResponse
	retry(t, "update "+req.GetProviderId()+" through "+n.name, func(ctx context.Context) error {
		var err error
		resp, err = n.mgmt.UpdateMetricsProvider(ctx, req)
		if err == nil && !resp.GetOperation().GetDone() && resp.GetOperation() != nil {
			return status.Error(codes.DeadlineExceeded, "update still running")
		}
		return err
	})
	return resp
}

// waitProviders waits until every node runs exactly the providers of want
// at their versions.
func waitProviders(t *testing.T, nodes []*node, want map[string]uint64) {
	t.Helper()
	for _, n := range nodes {
		has := &note{}
		require.Eventually(t, func() bool {
			got := n.providers(t)
			has.set(describe(got))
			if len(got) != len(want) {
				return false
			}
			for id, v := range want {
				p := got[id]
				if p == nil || p.GetVersion() != v || p.GetState() != pb.ProviderState_PROVIDER_STATE_RUNNING {
					return false
				}
			}
			return true
		}, waitConverge, poll, "%s runs %v; has %s", n.name, want, has)
	}
}

func describe(ps map[string]*pb.Provider) string {
	var b bytes.Buffer
	for id, p := range ps {
		fmt.Fprintf(&b, "%s v%d %s; ", id, p.GetVersion(), p.GetState())
	}
	return b.String()
}

// etcdLeader returns the index of the member that leads the cluster.
func etcdLeader(t *testing.T, endpoints []string) int {
	t.Helper()
	leader := -1
	require.Eventually(t, func() bool {
		for i, ep := range endpoints {
			resp, err := httpClient.Post(ep+"/v3/maintenance/status", "application/json", bytes.NewBufferString("{}"))
			if err != nil {
				return false
			}
			var st struct {
				Header struct {
					MemberID string `json:"member_id"`
				} `json:"header"`
				Leader string `json:"leader"`
			}
			err = json.NewDecoder(resp.Body).Decode(&st)
			_ = resp.Body.Close()
			if err != nil || st.Leader == "" {
				return false
			}
			if st.Header.MemberID == st.Leader {
				leader = i
				return true
			}
		}
		return false
	}, waitConverge, poll, "an etcd leader")
	return leader
}

// subscriber is an exactly-once stream client and what it handled.
type subscriber struct {
	mu     sync.Mutex
	seqs   []uint64
	values map[seriesKey]map[float64]int
	last   uint64
	client *streamclient.Client
	cancel context.CancelFunc
	done   chan struct{}
	hb     bool
}

func subscribe(t *testing.T, n *node, id string, resume *uint64) *subscriber {
	t.Helper()
	s := &subscriber{values: map[seriesKey]map[float64]int{}, done: make(chan struct{})}
	client, err := streamclient.New(n.conn, streamclient.Config{
		Filter: &pb.MetricFilter{Names: []string{loadMetric}},
		Options: &pb.StreamOptions{
			Qos: pb.QualityOfService_QUALITY_OF_SERVICE_EXACTLY_ONCE, SubscriptionId: id, ResumeAfterSequence: resume,
			HeartbeatIntervalMs: 50,
		},
		Handler: func(_ context.Context, b *pb.MetricBatch) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.seqs = append(s.seqs, b.GetSequence())
			s.last = b.GetSequence()
			for _, m := range b.GetMetrics() {
				k := seriesKey{m.GetLabels()["worker"], m.GetLabels()["key"], m.GetLabels()["collector_instance"]}
				if s.values[k] == nil {
					s.values[k] = map[float64]int{}
				}
				s.values[k][m.GetValue()]++
			}
			return nil
		},
		OnHeartbeat: func(hb *pb.Heartbeat) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.hb = true
			s.last = max(s.last, hb.GetLastSequence())
		},
		MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	s.client = client
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		_ = client.Run(ctx)
		close(s.done)
	}()
	t.Cleanup(s.stop)
	return s
}

// stop ends the subscription and waits for its client.
func (s *subscriber) stop() {
	s.cancel()
	<-s.done
}

func (s *subscriber) opened() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hb
}

// lastSeq is the stream position: the last batch or heartbeat sequence.
func (s *subscriber) lastSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// nonKilledValues counts the values handled of every node but killed.
func (s *subscriber) nonKilledValues(killed string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, vs := range s.values {
		if k.instance != killed {
			n += len(vs)
		}
	}
	return n
}

func (s *subscriber) got() ([]uint64, map[seriesKey]map[float64]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[seriesKey]map[float64]int{}
	for k, vs := range s.values {
		out[k] = map[float64]int{}
		for v, n := range vs {
			out[k][v] = n
		}
	}
	return append([]uint64(nil), s.seqs...), out
}

// note is a failure message argument that a polled condition updates
// (read when the message is printed, maybe while the condition runs).
type note struct {
	mu sync.Mutex
	s  string
}

func (n *note) set(s string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.s = s
}

func (n *note) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.s
}
