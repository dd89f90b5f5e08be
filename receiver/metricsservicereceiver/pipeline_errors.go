package metricsservicereceiver

import (
	"strconv"
	"sync"
	"time"
)

// errorLog remembers recent pipeline refusals for health reporting.
type errorLog struct {
	mu    sync.Mutex
	times []time.Time
	last  string
}

const errorLogKeep = 1000

func (l *errorLog) add(at time.Time, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.times = append(l.times, at)
	if len(l.times) > errorLogKeep {
		l.times = l.times[len(l.times)-errorLogKeep:]
	}
	l.last = msg
}

// recent counts the refusals in the last span.
func (l *errorLog) recent(now time.Time, span time.Duration) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, t := range l.times {
		if now.Sub(t) <= span {
			n++
		}
	}
	return n
}

func (l *errorLog) message(recent int) string {
	if recent == 0 {
		return "the pipeline accepted every batch in the last 5 minutes"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return strconv.Itoa(recent) + " batches refused by the pipeline in the last 5 minutes; last: " + l.last
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
