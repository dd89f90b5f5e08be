package registry

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// convergeWithin is the bound a definition registered on one node is
// enforced on another within (README: "Definitions on etcd"); the watch
// usually takes milliseconds.
const convergeWithin = 5 * time.Second

// etcdNode opens one node's registry on the cluster members eps.
func etcdNode(t *testing.T, eps []string, prefix string, mode Mode) *Registry {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	r, err := OpenEtcd(context.Background(), EtcdOptions{
		Client: cli, Prefix: prefix, Endpoints: eps, RequestTimeout: time.Second, HealthInterval: 100 * time.Millisecond,
		Logger: zaptest.NewLogger(t),
	}, mode)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, r.Close(context.Background()))
		_ = cli.Close()
	})
	return r
}

var ctx = context.Background()

func prefixOf(t *testing.T) string { return "/" + strings.ReplaceAll(t.Name(), "/", "_") + "/" }

func get(method string) *pb.MetricData {
	return &pb.MetricData{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Labels: map[string]string{"method": method}}
}

func TestEtcdDefinitionRegisteredOnOneNodeIsEnforcedOnTheOther(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 3)
	eps := cluster.Endpoints()
	a := etcdNode(t, eps[:1], prefixOf(t), ModeStrict)
	b := etcdNode(t, eps[1:2], prefixOf(t), ModeStrict)
	assert.Equal(t, "etcd", b.Health().Backend)

	// strict: unknown on B until A registers it
	require.NotNil(t, b.Validate(get("GET")))
	tok := b.DefinitionsToken()
	_, err := a.Register(ctx, baseDef(), RegisterOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.Validate(get("GET")) == nil }, convergeWithin, 5*time.Millisecond)
	assert.NotSame(t, tok, b.DefinitionsToken(), "the series cache token changes when the watch applies a change")
	iss := b.Validate(get("DELETE"))
	require.NotNil(t, iss, "B enforces A's allowed values")
	assert.Contains(t, iss.Message, "DELETE")
	e, ok := b.Get("http_requests_total")
	require.True(t, ok)
	assert.Equal(t, uint64(1), e.Current().Version)

	// a compatible update on B reaches A
	d2 := baseDef()
	d2.Labels[0].AllowedValues = append(d2.Labels[0].AllowedValues, "DELETE")
	res, err := b.Register(ctx, d2, RegisterOptions{})
	require.NoError(t, err)
	assert.Equal(t, uint64(2), res.Version)
	require.Eventually(t, func() bool { return a.Validate(get("DELETE")) == nil }, convergeWithin, 5*time.Millisecond)

	// unregistered on A and registered again at version 1 with other rules on B:
	// A compiles the new rules though the version number is the same
	_, err = a.Unregister(ctx, "http_requests_total", time.Time{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := b.Get("http_requests_total"); return !ok }, convergeWithin, 5*time.Millisecond)
	d3 := baseDef()
	d3.Labels[0].AllowedValues = []string{"PUT"}
	res, err = b.Register(ctx, d3, RegisterOptions{})
	require.NoError(t, err)
	require.Equal(t, uint64(1), res.Version)
	require.Eventually(t, func() bool { return a.Validate(get("PUT")) == nil && a.Validate(get("GET")) != nil }, convergeWithin, 5*time.Millisecond)

	// a node opened later reads everything
	c := etcdNode(t, eps, prefixOf(t), ModeStrict)
	assert.Nil(t, c.Validate(get("PUT")))
	assert.Len(t, c.List(nil), 1)
}

func TestEtcdConcurrentUpdatesOneIsAbortedWithTheCurrentVersion(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 3)
	eps := cluster.Endpoints()
	a := etcdNode(t, eps[:1], prefixOf(t), ModeOpen)
	b := etcdNode(t, eps[1:2], prefixOf(t), ModeOpen)
	_, err := a.Register(ctx, baseDef(), RegisterOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := b.Get("http_requests_total"); return ok }, convergeWithin, 5*time.Millisecond)

	for round := range 3 {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, n := range []*Registry{a, b} {
			wg.Go(func() {
				d := baseDef()
				d.Description = "from node " + string(rune('A'+i)) + " round " + string(rune('0'+round))
				_, errs[i] = n.Register(context.Background(), d, RegisterOptions{})
			})
		}
		wg.Wait()
		var lost []error
		for _, err := range errs {
			if err != nil {
				lost = append(lost, err)
			}
		}
		if len(lost) == 0 {
			// one node saw the other's write before it wrote (no race this round)
			continue
		}
		require.Len(t, lost, 1, "exactly one concurrent update loses: %v", errs)
		var ce *ConflictError
		require.ErrorAs(t, lost[0], &ce)
		require.ErrorIs(t, lost[0], ErrConflict)
		assert.Equal(t, "http_requests_total", ce.Metric)
		assert.Contains(t, lost[0].Error(), "re-read it")
		loser := a
		if errs[1] != nil {
			loser = b
		}
		// the loser's view is current already: its retry goes through at once
		cur, _ := loser.Get("http_requests_total")
		assert.Equal(t, ce.Version, cur.Current().Version)
		d := baseDef()
		d.Description = "retried"
		res, err := loser.Register(ctx, d, RegisterOptions{})
		require.NoError(t, err, "a retry after the abort succeeds")
		assert.Equal(t, ce.Version+1, res.Version)
		return
	}
	t.Fatal("no round raced: the test could not check the abort")
}

func TestEtcdDownKeepsTheLastDefinitionsAndRefusesChanges(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 3)
	eps := cluster.Endpoints()
	var mu sync.Mutex
	var seen []Health
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	r, err := OpenEtcd(ctx, EtcdOptions{Client: cli, Prefix: prefixOf(t), Endpoints: eps, RequestTimeout: time.Second,
		HealthInterval: 100 * time.Millisecond, Logger: zaptest.NewLogger(t),
		OnHealth: func(h Health) { mu.Lock(); seen = append(seen, h); mu.Unlock() }}, ModeStrict)
	require.NoError(t, err)
	defer r.Close(ctx)
	_, err = r.Register(ctx, baseDef(), RegisterOptions{})
	require.NoError(t, err)

	for i := range 3 {
		cluster.Kill(i)
	}
	require.Eventually(t, func() bool { return r.Health().Degraded }, 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, r.Health().Detail, "fix: bring the etcd cluster back")
	// checks keep the last known definitions
	assert.Nil(t, r.Validate(get("GET")))
	assert.NotNil(t, r.Validate(get("DELETE")))
	d := baseDef()
	d.Description = "while down"
	_, err = r.Register(ctx, d, RegisterOptions{})
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Contains(t, err.Error(), "etcdctl endpoint health")
	_, err = r.Unregister(ctx, "http_requests_total", time.Time{})
	require.ErrorIs(t, err, ErrUnavailable)
	_, ok := r.Get("http_requests_total")
	assert.True(t, ok, "a refused unregister changes nothing")

	for i := range 3 {
		cluster.Start(i)
	}
	for i := range 3 {
		cluster.WaitHealthy(i)
	}
	require.Eventually(t, func() bool { return !r.Health().Degraded }, 20*time.Second, 10*time.Millisecond)
	res, err := r.Register(ctx, d, RegisterOptions{})
	require.NoError(t, err)
	assert.Equal(t, uint64(2), res.Version)
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(seen), 2)
	assert.True(t, seen[0].Degraded)
	assert.False(t, seen[len(seen)-1].Degraded)
}

func TestEtcdScheduledDeletionIsTakenByOneNodeAndSeenByTheOthers(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 3)
	eps := cluster.Endpoints()
	a := etcdNode(t, eps[:1], prefixOf(t), ModeOpen)
	b := etcdNode(t, eps[1:2], prefixOf(t), ModeOpen)
	c := etcdNode(t, eps[2:], prefixOf(t), ModeOpen)
	nodes := []*Registry{a, b, c}
	_, err := a.Register(ctx, baseDef(), RegisterOptions{})
	require.NoError(t, err)
	at := time.Now().Add(time.Hour)
	_, err = a.Unregister(ctx, "http_requests_total", at)
	require.NoError(t, err)
	for _, n := range nodes {
		require.Eventually(t, func() bool { return len(n.Pending()) == 1 }, convergeWithin, 5*time.Millisecond)
	}
	// C does not lead: it takes nothing
	c.SetFence(func() (clientv3.Cmp, bool) { return clientv3.Cmp{}, false })
	// A and B both try (no election): the compare-and-swap gives it to one
	var wg sync.WaitGroup
	got := make([][]Deletion, 3)
	for i, n := range nodes {
		wg.Go(func() {
			var err error
			got[i], err = n.DueDeletions(context.Background(), at.Add(time.Second))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Empty(t, got[2], "a node that does not lead takes nothing")
	require.Equal(t, 1, len(got[0])+len(got[1]), "exactly one node takes the deletion: %v", got)
	taker, others := a, []*Registry{b, c}
	if len(got[1]) == 1 {
		taker, others = b, []*Registry{a, c}
	}
	for _, n := range others {
		require.Eventually(t, func() bool { return len(n.Pending()) == 0 }, convergeWithin, 5*time.Millisecond)
		var done []Deletion
		require.Eventually(t, func() bool { done = append(done, n.DoneDeletions()...); return len(done) == 1 }, convergeWithin, 5*time.Millisecond)
		assert.Equal(t, "http_requests_total", done[0].Name)
		assert.True(t, done[0].At.Equal(at))
	}
	assert.Empty(t, taker.DoneDeletions(), "the taker does not see its own deletion as another's")
	assert.Empty(t, taker.Pending())
}

func TestEtcdScheduledDeletionIsFencedByTheLeadership(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 1)
	eps := cluster.Endpoints()
	a := etcdNode(t, eps, prefixOf(t), ModeOpen)
	_, err := a.Register(ctx, baseDef(), RegisterOptions{})
	require.NoError(t, err)
	at := time.Now().Add(time.Hour)
	_, err = a.Unregister(ctx, "http_requests_total", at)
	require.NoError(t, err)
	// a fence naming a key that does not exist: the leadership is gone in etcd
	a.SetFence(func() (clientv3.Cmp, bool) {
		return clientv3.Compare(clientv3.CreateRevision(prefixOf(t)+"election/gone"), "=", 42), true
	})
	got, err := a.DueDeletions(ctx, at.Add(time.Second))
	require.NoError(t, err)
	assert.Empty(t, got, "a leader whose lease expired takes nothing")
	assert.Len(t, a.Pending(), 1)
	a.SetFence(nil)
	got, err = a.DueDeletions(ctx, at.Add(time.Second))
	require.NoError(t, err)
	assert.Len(t, got, 1)
}

func TestEtcdOpenFailsWithTheFixWhenEtcdIsDown(t *testing.T) {
	eps := []string{"http://127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	_, err = OpenEtcd(ctx, EtcdOptions{Client: cli, Prefix: "/x/", Endpoints: eps, RequestTimeout: 300 * time.Millisecond}, ModeOpen)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "definitions.etcd.endpoints")
}

func TestEtcdUnregisterNowTellsTheOtherNodesToDeleteTheirData(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 1)
	eps := cluster.Endpoints()
	a := etcdNode(t, eps, prefixOf(t), ModeOpen)
	b := etcdNode(t, eps, prefixOf(t), ModeOpen)
	_, err := a.Register(ctx, baseDef(), RegisterOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := b.Get("http_requests_total"); return ok }, convergeWithin, 5*time.Millisecond)
	_, err = a.UnregisterNow(ctx, "http_requests_total")
	require.NoError(t, err)
	var done []Deletion
	require.Eventually(t, func() bool { done = append(done, b.DoneDeletions()...); return len(done) == 1 }, convergeWithin, 5*time.Millisecond)
	assert.Equal(t, "http_requests_total", done[0].Name)
	_, ok := b.Get("http_requests_total")
	assert.False(t, ok)
	assert.Empty(t, a.DoneDeletions(), "the node that deleted does not see its own")
	assert.Empty(t, b.Pending(), "nothing is scheduled")
	_, err = a.UnregisterNow(ctx, "http_requests_total")
	require.ErrorIs(t, err, ErrNotFound)
}

// TestEtcdOversizedDefinitionIsRefusedAloneAndTheRegistryStaysUp: a
// definition too large for one etcd key is refused as invalid, naming the
// limit and the fix; the registry is not marked degraded, so every other
// caller's changes still go through.
func TestEtcdOversizedDefinitionIsRefusedAloneAndTheRegistryStaysUp(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 1)
	r := etcdNode(t, cluster.Endpoints(), prefixOf(t), ModeOpen)
	big := baseDef()
	big.Name = "huge_total"
	// Each label within the bounds (1000 allowed values, each short), but
	// twenty of them make more than an etcd key holds.
	for l := range 20 {
		ld := &pb.LabelDefinition{Name: "l" + strconv.Itoa(l)}
		for i := range 1000 {
			ld.AllowedValues = append(ld.AllowedValues, strings.Repeat("v", 56)+strconv.Itoa(i))
		}
		big.Labels = append(big.Labels, ld)
	}
	_, err := r.Register(ctx, big, RegisterOptions{})
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	assert.Equal(t, "too_large", inv.Issues[0].Code)
	assert.Contains(t, inv.Issues[0].Message, `"huge_total"`)
	assert.NotEmpty(t, inv.Issues[0].Suggestion)
	assert.False(t, r.Health().Degraded, "one caller's oversized definition does not degrade the registry")
	_, err = r.Register(ctx, baseDef(), RegisterOptions{})
	require.NoError(t, err, "other changes still go through")
}
