package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSummaryBenchSeesEverySeries runs "summary" small: every variant
// answers and the plain summary counts the loaded series (target_info
// included, hence at least).
func TestSummaryBenchSeesEverySeries(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, runSummaryBench(&out, &summaryBenchConfig{series: 400, names: 4, samples: 2, runs: 1, dir: t.TempDir()}))
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	require.Len(t, lines, 5, out.String())
	assert.Contains(t, string(lines[0]), "loaded 400 series")
	assert.Regexp(t, `^plain \(top_n 10\) .* 40[0-9]$`, string(lines[2]))
	assert.Regexp(t, `^filter names bench_1\* .* 100$`, string(lines[4]))
}
