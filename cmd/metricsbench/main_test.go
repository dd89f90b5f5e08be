package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/metricsmodule/metricsmodule/cmd/metricsbench/payload"
)

// TestServerCountsEveryDatapoint sends each shape to both receivers, in
// process, and checks that the sink counts exactly the datapoints sent and
// that the responses accept every point.
func TestServerCountsEveryDatapoint(t *testing.T) {
	ctx := context.Background()
	for _, side := range []string{sideOurs, sideOTLP} {
		t.Run(side, func(t *testing.T) {
			srv, err := startServer(ctx, side, "127.0.0.1:0")
			require.NoError(t, err)
			defer func() { require.NoError(t, srv.shutdown()) }()

			want := int64(0)
			for _, sh := range payload.Shapes {
				ps, err := buildPayloads(sh, 2, false)
				require.NoError(t, err)
				for _, p := range ps {
					c, err := newClient(srv.grpcAddr, side, p)
					require.NoError(t, err)
					require.NoError(t, c.check(ctx, side))
					require.NoError(t, c.send(ctx))
					require.NoError(t, c.conn.Close())
					want += 2 * int64(p.DataPoints)
				}
			}
			assert.Equal(t, want, srv.stats().DataPoints)
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	// utime 250 and stime 50 ticks; the command name holds spaces and parentheses.
	stat := "1234 (metrics bench (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0\n"
	got, err := parseStatCPU([]byte(stat))
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, got)
	_, err = parseStatCPU([]byte("garbage"))
	assert.Error(t, err)
}

func TestReport(t *testing.T) {
	cfg := &runConfig{shapes: []payload.Shape{payload.Shape1000x4}, sides: []string{sideOurs, sideOTLP}, rounds: 3, rates: []float64{0}, counters: []bool{false}}
	var trials []*trial
	for round := 1; round <= 3; round++ {
		for _, side := range cfg.sides {
			cpu := 2 * time.Second
			if side == sideOurs {
				cpu = time.Duration(round) * time.Second // 3, 1.5 and 1 M dp per CPU-s
			}
			trials = append(trials, &trial{
				round: round, side: side, shape: payload.Shape1000x4, perRequest: 1000,
				wall: 2 * time.Second, datapoints: 3_000_000, serverCPU: cpu, otherCPU: -1, hwmKiB: 40 << 10,
			})
		}
	}
	var out bytes.Buffer
	report(&out, cfg, trials)
	s := out.String()
	// Median ours 1.5M dp per CPU-s, otlp 1.5M: ratio 1.00; per round 2.00, 1.00, 0.67.
	assert.Contains(t, s, "| 1000x4 | 1000 | ours | 1500000 | 0.667 | 1500000 |")
	assert.Contains(t, s, "| 1000x4 | ours/otlp | 1.00x | 2.00, 1.00, 0.67 | 1.00x | 1.00x | 1.00x |")
	assert.NotContains(t, s, "trials kept more than")
	assert.Equal(t, 2, strings.Count(s, "n/a"), fmt.Sprint(s))

	trials[0].disturbed = true
	cfg.maxOthers, cfg.retries = 0.1, 3
	out.Reset()
	report(&out, cfg, trials)
	assert.Contains(t, out.String(), "1 of 6 trials kept more than 10% of other load on the server's CPU after 3 repetitions.")
}

func TestParseRunFlags(t *testing.T) {
	cfg, err := parseRunFlags([]string{"-shapes", "1000x4", "-sides", "otlp,ours", "-rounds", "1"})
	require.NoError(t, err)
	assert.Equal(t, []float64{0}, cfg.rates)
	assert.Equal(t, []bool{false}, cfg.counters)
	many, err := parseRunFlags([]string{"-shapes", "testbed,1000x4", "-rates", "0,200000", "-counters", "increments,totals"})
	require.NoError(t, err)
	assert.Len(t, many.cells(), 8)
	assert.Equal(t, "1000x4, 200k dp/s, totals", cell{payload.Shape1000x4, 200000, true}.String())
	_, err = parseRunFlags([]string{"-counters", "deltas"})
	assert.Error(t, err)
	cfg, err = parseRunFlags([]string{"-shapes", "1000x4", "-sides", "otlp,ours", "-rounds", "1"})
	require.NoError(t, err)
	assert.Equal(t, []payload.Shape{payload.Shape1000x4}, cfg.shapes)
	assert.Equal(t, []string{sideOTLP, sideOurs}, cfg.sides)
	_, err = parseRunFlags([]string{"-shapes", "huge"})
	assert.Error(t, err)
	_, err = parseRunFlags([]string{"-sides", "prometheus"})
	assert.Error(t, err)
}
