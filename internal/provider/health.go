package provider

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Health defaults (HealthCheckSettings).
const (
	defaultDegradedRatio  = 0.05
	defaultUnhealthyRatio = 0.5
	defaultHealthWindow   = time.Minute
	healthSlots           = 10
	// recoverAfter consecutive successful exports make an UNHEALTHY provider
	// HEALTHY again at once, without waiting for its failures to leave the window.
	recoverAfter      = 3
	maxHealthEvents   = 100
	queueDegradedFill = 0.9
)

type healthConfig struct {
	degraded, unhealthy float64
	window              time.Duration
}

func healthConfigOf(h *pb.HealthCheckSettings) healthConfig {
	c := healthConfig{degraded: defaultDegradedRatio, unhealthy: defaultUnhealthyRatio, window: defaultHealthWindow}
	if v := h.GetDegradedErrorRatio(); v > 0 {
		c.degraded = v
	}
	if v := h.GetUnhealthyErrorRatio(); v > 0 {
		c.unhealthy = v
	}
	if w := h.GetWindow(); w != nil && w.AsDuration() > 0 {
		c.window = w.AsDuration()
	}
	return c
}

type healthSlot struct {
	slot     int64
	ok, fail uint64
}

// healthTracker judges a provider's health from its exports over a sliding
// window (error ratio against the thresholds), its exporter's component
// status, a full queue and stalled exports, and keeps every transition.
type healthTracker struct {
	cfg    healthConfig
	slots  [healthSlots]healthSlot
	state  pb.HealthStatus
	reason string
	consec int
	// status is what the exporter's component status says (UNSPECIFIED: nothing).
	status       pb.HealthStatus
	statusReason string
	// pressure is a condition seen by the once-a-second check (full queue, stall).
	pressure       bool
	pressureReason string
	// loop is set when the destination resolves to this collector.
	loop    string
	history []*pb.HealthEvent
}

func (h *healthTracker) slotOf(t time.Time) int64 {
	return t.UnixNano() / int64(h.cfg.window/healthSlots)
}

// record adds one export outcome and re-evaluates; it reports a transition.
func (h *healthTracker) record(now time.Time, ok bool, errMsg string) bool {
	s := h.slotOf(now)
	b := &h.slots[s%healthSlots]
	if b.slot != s {
		*b = healthSlot{slot: s}
	}
	if ok {
		b.ok++
		h.consec++
	} else {
		b.fail++
		h.consec = 0
	}
	if ok && h.state == pb.HealthStatus_HEALTH_STATUS_UNHEALTHY && h.consec >= recoverAfter {
		// Recovered: forget the failures of the outage.
		for i := range h.slots {
			h.slots[i].fail = 0
		}
	}
	return h.evaluate(now, errMsg)
}

// evaluate recomputes the state; lastErr explains a worse state. It reports
// whether the state changed.
func (h *healthTracker) evaluate(now time.Time, lastErr string) bool {
	cur := h.slotOf(now)
	var ok, fail uint64
	for _, b := range h.slots {
		if b.slot > cur-healthSlots && b.slot <= cur {
			ok += b.ok
			fail += b.fail
		}
	}
	next, reason := h.state, h.reason
	if ok+fail > 0 {
		ratio := float64(fail) / float64(ok+fail)
		window := fmt.Sprintf("%d of %d exports failed in the last %s", fail, ok+fail, h.cfg.window)
		switch {
		case ratio >= h.cfg.unhealthy && fail > 0:
			next, reason = pb.HealthStatus_HEALTH_STATUS_UNHEALTHY, window
		case ratio >= h.cfg.degraded && fail > 0:
			next, reason = pb.HealthStatus_HEALTH_STATUS_DEGRADED, window
		default:
			next, reason = pb.HealthStatus_HEALTH_STATUS_HEALTHY, window
		}
		if fail > 0 && lastErr != "" {
			reason += ": " + lastErr
		}
	}
	if h.pressure && next < pb.HealthStatus_HEALTH_STATUS_DEGRADED {
		next, reason = pb.HealthStatus_HEALTH_STATUS_DEGRADED, h.pressureReason
	}
	if h.status > next {
		next, reason = h.status, h.statusReason
	}
	if h.loop != "" {
		next, reason = pb.HealthStatus_HEALTH_STATUS_UNHEALTHY, h.loop
	}
	if next != h.state {
		h.state, h.reason = next, reason
		h.history = append(h.history, &pb.HealthEvent{Time: timestamppb.New(now), Status: next, Message: reason})
		if len(h.history) > maxHealthEvents {
			h.history = h.history[len(h.history)-maxHealthEvents:]
		}
		return true
	}
	h.reason = reason
	return false
}

// note appends an event that is not a transition (e.g. a promotion).
func (h *healthTracker) note(now time.Time, msg string) {
	h.history = append(h.history, &pb.HealthEvent{Time: timestamppb.New(now), Status: h.state, Message: msg})
	if len(h.history) > maxHealthEvents {
		h.history = h.history[len(h.history)-maxHealthEvents:]
	}
}
