package provider

import (
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Anomaly detection: an exponentially weighted mean and variance per signal
// (throughput, error rate, latency), updated once a second; a sample more
// than zThreshold deviations away, after a warm-up, is an anomaly.
const (
	ewmaAlpha        = 0.1
	anomalyWarmup    = 30
	zThreshold       = 3.0
	zSevere          = 6.0
	anomalyCooldown  = 30 * time.Second
	maxAnomalies     = 50
	minRelativeSigma = 0.05
)

// ewma is an exponentially weighted mean and variance.
type ewma struct {
	mean, variance float64
	n              int
	// minSigma is the smallest deviation, in the signal's unit.
	minSigma float64
}

// zscore returns how far x is from the mean so far, in deviations (0 during
// warm-up), then adds x. The deviation has a floor (minRelativeSigma of the
// mean, and minSigma), so that a flat signal's tiny wobbles are not anomalies.
func (e *ewma) zscore(x float64) float64 {
	var z float64
	if e.n >= anomalyWarmup {
		sd := max(math.Sqrt(e.variance), minRelativeSigma*math.Abs(e.mean), e.minSigma)
		z = (x - e.mean) / sd
	}
	if e.n == 0 {
		e.mean = x
	} else {
		d := x - e.mean
		incr := ewmaAlpha * d
		e.mean += incr
		e.variance = (1 - ewmaAlpha) * (e.variance + d*incr)
	}
	e.n++
	return z
}

// anomalyDetector watches one provider's per-second signals.
type anomalyDetector struct {
	throughput, errorRate, latency ewma
	found                          []*pb.Anomaly
	last                           map[string]time.Time
}

// Floors of the deviation: 1 data point/s, 1% of exports, 1ms.
func newAnomalyDetector() anomalyDetector {
	return anomalyDetector{
		throughput: ewma{minSigma: 1},
		errorRate:  ewma{minSigma: 0.01},
		latency:    ewma{minSigma: 0.001},
	}
}

// observe takes the signals of one second: data points sent per second, the
// share of failed exports and the mean export latency in seconds (both
// meaningful only when exports > 0).
func (a *anomalyDetector) observe(at time.Time, throughput, errRate, latency float64, exports uint64) {
	if z := a.throughput.zscore(throughput); z <= -zThreshold {
		a.add(at, "throughput_drop", z, fmt.Sprintf("throughput %.1f dp/s is %.1f deviations below its usual %.1f dp/s", throughput, -z, a.throughput.mean))
	} else if z >= zThreshold {
		a.add(at, "throughput_spike", z, fmt.Sprintf("throughput %.1f dp/s is %.1f deviations above its usual %.1f dp/s", throughput, z, a.throughput.mean))
	}
	if exports == 0 {
		return
	}
	if z := a.errorRate.zscore(errRate); z >= zThreshold && errRate >= 0.05 {
		a.add(at, "error_burst", z, fmt.Sprintf("%.0f%% of exports failed, %.1f deviations above the usual %.1f%%", errRate*100, z, a.errorRate.mean*100))
	}
	if z := a.latency.zscore(latency); z >= zThreshold {
		a.add(at, "latency_spike", z, fmt.Sprintf("mean export latency %s is %.1f deviations above the usual %s", secs(latency), z, secs(a.latency.mean)))
	}
}

func secs(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Microsecond)
}

func (a *anomalyDetector) add(at time.Time, kind string, z float64, msg string) {
	if a.last == nil {
		a.last = map[string]time.Time{}
	}
	if t, ok := a.last[kind]; ok && at.Sub(t) < anomalyCooldown {
		return
	}
	a.last[kind] = at
	sev := pb.Severity_SEVERITY_WARNING
	if math.Abs(z) >= zSevere {
		sev = pb.Severity_SEVERITY_ERROR
	}
	a.found = append(a.found, &pb.Anomaly{Kind: kind, Severity: sev, Message: msg, DetectedAt: timestamppb.New(at)})
	if len(a.found) > maxAnomalies {
		a.found = a.found[len(a.found)-maxAnomalies:]
	}
}
