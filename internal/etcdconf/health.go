package etcdconf

import (
	"context"
	"time"
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
