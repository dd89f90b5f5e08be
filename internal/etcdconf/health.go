package etcdconf

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// HealthLoop is how a registry on etcd notices that etcd stopped and
// started answering: every Interval it runs Probe (bounded by Timeout);
// a failed probe calls Down, and the first answer after a failure calls Up
// (a resync) until Up succeeds.
type HealthLoop struct {
	// Interval is the time between probes; Timeout bounds one probe.
	Interval, Timeout time.Duration
	// Probe reads from etcd.
	Probe func(ctx context.Context) error
	// Degraded says whether the registry is degraded now.
	Degraded func() bool
	// Down marks the registry degraded with the probe's error.
	Down func(err error)
	// Up resyncs a degraded registry and marks it healthy; on an error the
	// registry stays degraded and Up runs again at the next answer.
	Up func(ctx context.Context) error
}

// Run probes until ctx ends.
func (h HealthLoop) Run(ctx context.Context) {
	t := time.NewTicker(h.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, h.Timeout)
		err := h.Probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			h.Down(err)
			continue
		}
		if h.Degraded() {
			_ = h.Up(ctx)
		}
	}
}

// WatchLoop follows the keys under Prefix from the revision after From():
// every watch response goes to Apply; a compacted or cancelled watch calls
// Resync (a full read) and a failed one Down; then the watch starts again
// after Pause, until ctx ends.
type WatchLoop struct {
	Client *clientv3.Client
	Prefix string
	// From returns the last revision applied.
	From func() int64
	// Apply applies the events of one watch response.
	Apply func(wr clientv3.WatchResponse)
	// Resync reads everything again; its error calls Down.
	Resync func(ctx context.Context) error
	// Down marks the registry degraded.
	Down func(err error)
	// Pause is the wait before a new watch.
	Pause time.Duration
}

// Run watches until ctx ends.
func (w WatchLoop) Run(ctx context.Context) {
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := w.Client.Watch(wctx, w.Prefix, clientv3.WithPrefix(), clientv3.WithRev(w.From()+1))
		resync := false
		for wr := range wch {
			if wr.CompactRevision != 0 || errors.Is(wr.Err(), context.Canceled) && ctx.Err() == nil {
				resync = true
				break
			}
			if err := wr.Err(); err != nil {
				w.Down(err)
				break
			}
			w.Apply(wr)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if resync {
			if err := w.Resync(ctx); err != nil {
				w.Down(err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.Pause):
		}
	}
}
