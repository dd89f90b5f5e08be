package election

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runs counts who runs the work and the most that ever ran at once.
type runs struct {
	mu      sync.Mutex
	active  map[string]bool
	started map[string]int
	most    int
}

func newRuns() *runs { return &runs{active: map[string]bool{}, started: map[string]int{}} }

func (r *runs) work(id string) func(ctx context.Context) {
	return func(ctx context.Context) {
		r.mu.Lock()
		r.active[id] = true
		r.started[id]++
		r.most = max(r.most, len(r.active))
		r.mu.Unlock()
		<-ctx.Done()
		r.mu.Lock()
		delete(r.active, id)
		r.mu.Unlock()
	}
}

func (r *runs) running() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id := range r.active {
		out = append(out, id)
	}
	return out
}

func client(t *testing.T, eps []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	return cli
}

func key(t *testing.T) string { return "/" + strings.ReplaceAll(t.Name(), "/", "_") + "/election" }

// node is one elector with its own client (its own "process").
type node struct {
	id  string
	cli *clientv3.Client
	el  *Elector
}

func startNodes(t *testing.T, eps []string, n int, ttl time.Duration, r *runs) []*node {
	t.Helper()
	var nodes []*node
	for i := range n {
		id := fmt.Sprintf("node-%d", i)
		cli := client(t, eps[i%len(eps):i%len(eps)+1])
		el, err := Start(cli, Config{Key: key(t), Job: "test", TTL: ttl, Identity: id, RequestTimeout: 2 * time.Second},
			zaptest.NewLogger(t).With(zap.String("node", id)), r.work(id))
		require.NoError(t, err)
		nd := &node{id: id, cli: cli, el: el}
		nodes = append(nodes, nd)
		t.Cleanup(func() {
			nd.el.Close()
			_ = nd.cli.Close()
		})
	}
	return nodes
}

func leaderOf(nodes []*node) *node {
	for _, n := range nodes {
		if n.el.Leading() {
			return n
		}
	}
	return nil
}

const within = 20 * time.Second

func TestOneOfThreeRunsTheWorkAndAllSeeWhoLeads(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 3)
	r := newRuns()
	nodes := startNodes(t, cluster.Endpoints(), 3, 2*time.Second, r)
	require.Eventually(t, func() bool { return len(r.running()) == 1 }, within, 10*time.Millisecond)
	lead := leaderOf(nodes)
	require.NotNil(t, lead)
	assert.Equal(t, []string{lead.id}, r.running())
	for _, n := range nodes {
		st := n.el.Status(context.Background())
		assert.Equal(t, lead.id, st.Leader, "node %s", n.id)
		assert.Equal(t, n == lead, st.Leading)
		assert.Equal(t, "test", st.Job)
		require.Eventually(t, func() bool { return n.el.Leader() == lead.id }, within, 10*time.Millisecond, "the cached leader of %s", n.id)
	}
	_, ok := lead.el.Fence()
	assert.True(t, ok)
	for _, n := range nodes {
		if n != lead {
			_, ok := n.el.Fence()
			assert.False(t, ok, "a follower has no fence")
		}
	}
	r.mu.Lock()
	assert.Equal(t, 1, r.most, "never two leaders at once")
	r.mu.Unlock()
}

func TestLeaderThatResignsIsReplacedAtOnce(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 3)
	r := newRuns()
	// a long lease: only the resignation can hand over within the bound below
	nodes := startNodes(t, cluster.Endpoints(), 2, 60*time.Second, r)
	require.Eventually(t, func() bool { return len(r.running()) == 1 }, within, 10*time.Millisecond)
	lead := leaderOf(nodes)
	require.NotNil(t, lead)
	lead.el.Close()
	assert.False(t, lead.el.Leading())
	require.Eventually(t, func() bool {
		run := r.running()
		return len(run) == 1 && run[0] != lead.id
	}, 15*time.Second, 10*time.Millisecond, "the other node takes over well before the 60s lease would expire")
	r.mu.Lock()
	assert.Equal(t, 1, r.most)
	r.mu.Unlock()
}

func TestLeaderThatDiesIsReplacedWhenItsLeaseExpires(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 3)
	r := newRuns()
	const ttl = 2 * time.Second
	nodes := startNodes(t, cluster.Endpoints(), 3, ttl, r)
	require.Eventually(t, func() bool { return len(r.running()) == 1 }, within, 10*time.Millisecond)
	lead := leaderOf(nodes)
	require.NotNil(t, lead)
	// the process dies: its client goes away without resigning; its key
	// stays until the lease expires
	require.NoError(t, lead.cli.Close())
	require.Eventually(t, func() bool { return !lead.el.Leading() }, within, 10*time.Millisecond, "the dead node stops its work")
	var next *node
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			if n != lead && n.el.Leading() {
				next = n
				return true
			}
		}
		return false
	}, ttl+10*time.Second, 10*time.Millisecond, "another node leads once the lease expired")
	require.Eventually(t, func() bool {
		run := r.running()
		return len(run) == 1 && run[0] == next.id
	}, within, 10*time.Millisecond)
	r.mu.Lock()
	assert.Equal(t, 1, r.started[next.id])
	r.mu.Unlock()
	for _, n := range nodes {
		if n != lead {
			assert.Equal(t, next.id, n.el.Status(context.Background()).Leader)
			require.Eventually(t, func() bool { return n.el.Leader() == next.id }, within, 10*time.Millisecond)
		}
	}
}

func TestLeaderOutlivesAnEtcdMemberLoss(t *testing.T) {
	cluster := testpeer.StartEtcdCluster(t, 3)
	r := newRuns()
	eps := cluster.Endpoints()
	var nodes []*node
	for i := range 2 {
		id := fmt.Sprintf("node-%d", i)
		cli := client(t, eps) // every member: the client fails over
		el, err := Start(cli, Config{Key: key(t), Job: "test", TTL: 3 * time.Second, Identity: id},
			zaptest.NewLogger(t), r.work(id))
		require.NoError(t, err)
		nodes = append(nodes, &node{id: id, cli: cli, el: el})
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.el.Close()
			_ = n.cli.Close()
		}
	})
	require.Eventually(t, func() bool { return len(r.running()) == 1 }, within, 10*time.Millisecond)
	lead := leaderOf(nodes)
	require.NotNil(t, lead)
	cluster.Kill(0)
	// quorum stays: the cluster answers the other node (a linearizable read)
	// and names the same leader, which kept leading all along
	other := nodes[0]
	if other == lead {
		other = nodes[1]
	}
	require.Eventually(t, func() bool {
		st := other.el.Status(context.Background())
		return st.Err == "" && st.Leader == lead.id
	}, within, 10*time.Millisecond)
	assert.True(t, lead.el.Leading())
	r.mu.Lock()
	assert.Equal(t, 1, r.most)
	assert.Equal(t, 1, r.started[lead.id]+r.started[other.id], "no second term")
	r.mu.Unlock()
}

func TestStartRefusesABadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no key", Config{}, "key is empty"},
		{"sub-second lease", Config{Key: "/k", TTL: 500 * time.Millisecond}, "below 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Start(nil, tc.cfg, zap.NewNop(), func(context.Context) {})
			require.ErrorContains(t, err, tc.want)
		})
	}
}
