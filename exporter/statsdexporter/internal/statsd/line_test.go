package statsd

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFormatTagFormats(t *testing.T) {
	tags := []Tag{{"env", "prod"}, {"route", "/a"}}
	for _, tt := range []struct {
		format TagFormat
		line   Line
		want   string
	}{
		{TagFormatNone, Line{Name: "app.hits", Value: 3, Type: Counter, Tags: tags}, "app.hits:3|c"},
		{TagFormatDogStatsD, Line{Name: "app.hits", Value: 3, Type: Counter, Tags: tags}, "app.hits:3|c|#env:prod,route:/a"},
		{TagFormatInfluxDB, Line{Name: "app.hits", Value: 3, Type: Counter, Tags: tags}, "app.hits,env=prod,route=/a:3|c"},
		{TagFormatGraphite, Line{Name: "app.hits", Value: 3, Type: Counter, Tags: tags}, "app.hits;env=prod;route=/a:3|c"},
		{TagFormatDogStatsD, Line{Name: "app.hits", Value: 3, Type: Counter, Rate: 0.5, Tags: tags}, "app.hits:3|c|@0.5|#env:prod,route:/a"},
		{TagFormatInfluxDB, Line{Name: "app.hits", Value: 3, Type: Counter, Rate: 0.5, Tags: tags}, "app.hits,env=prod,route=/a:3|c|@0.5"},
		{TagFormatDogStatsD, Line{Name: "app.hits", Value: 3, Type: Counter}, "app.hits:3|c"},
		{TagFormatNone, Line{Name: "t", Value: 0.25, Type: Timer, Rate: 1}, "t:0.25|ms"},
		{TagFormatNone, Line{Name: "h", Value: 12.5, Type: Histogram}, "h:12.5|h"},
		{TagFormatNone, Line{Name: "d", Value: 1e-7, Type: Distribution}, "d:0.0000001|d"},
		{TagFormatNone, Line{Name: "g", Value: 21.5, Type: Gauge}, "g:21.5|g"},
		{TagFormatNone, Line{Name: "g", Value: 3, Type: Gauge, Delta: true}, "g:+3|g"},
		{TagFormatNone, Line{Name: "g", Value: -2, Type: Gauge, Delta: true}, "g:-2|g"},
		{TagFormatGraphite, Line{Name: "g", Value: -5, Type: Gauge, Tags: tags[:1]}, "g;env=prod:0|g\ng;env=prod:-5|g"},
		{TagFormatDogStatsD, Line{Name: "g", Value: -5, Type: Gauge, Tags: tags[:1]}, "g:0|g|#env:prod\ng:-5|g|#env:prod"},
		{TagFormatNone, Line{Name: "big", Value: 1e20, Type: Gauge}, "big:100000000000000000000|g"},
	} {
		assert.Equal(t, tt.want, Format(tt.line, tt.format))
	}
}

func TestSanitize(t *testing.T) {
	assert.Equal(t, "http.server.duration_ms-x", SanitizeName("http.server.duration ms-x"))
	assert.Equal(t, "a_b_c_d_e_f_g_h_i", SanitizeName("a:b|c@d#e,f=g;h\ni"))
	assert.Equal(t, "a_b_c_d_e_f_g_h_i_j/é", SanitizeTag("a:b|c@d#e,f=g;h\ni j/é"))
}

func TestWeightRateCountsExactly(t *testing.T) {
	assert.InDelta(t, 1.0, WeightRate(0), 0)
	assert.InDelta(t, 1.0, WeightRate(1), 0)
	ns := []uint64{1 << 20, 1<<32 + 7, 123_456_789}
	for n := uint64(2); n <= 20_000; n++ {
		ns = append(ns, n)
	}
	for _, n := range ns {
		r := WeightRate(n)
		inv := 1 / r
		require.Equal(t, n, uint64(inv), "truncating servers count n for n=%d", n)
		require.Less(t, inv-float64(n), 1e-6*float64(n), "n=%d", n)
		// The written rate reads back as the same float.
		line := Format(Line{Name: "x", Value: 1, Type: Timer, Rate: r}, TagFormatNone)
		require.True(t, strings.HasPrefix(line, "x:1|ms|@"), line)
	}
}

func TestQuantileName(t *testing.T) {
	assert.Equal(t, "p50", QuantileName(0.5))
	assert.Equal(t, "p99", QuantileName(0.99))
	assert.Equal(t, "p99_9", QuantileName(0.999))
	assert.Equal(t, "p0", QuantileName(0))
	assert.Equal(t, "p100", QuantileName(1))
}

func TestFormatValue(t *testing.T) {
	assert.Equal(t, "-42", FormatValue(-42))
	assert.Equal(t, "0.1", FormatValue(0.1))
	assert.Equal(t, "123456.789", FormatValue(123456.789))
	assert.NotContains(t, FormatValue(math.MaxFloat64), "e")
}

func TestPackUnderMTU(t *testing.T) {
	var entries []string
	for i := 0; i < 500; i++ {
		entries = append(entries, Format(Line{Name: "svc.requests", Value: float64(i), Type: Counter,
			Tags: []Tag{{"route", strings.Repeat("r", i%40)}}}, TagFormatDogStatsD))
	}
	entries = append(entries, "neg:0|g\nneg:-5|g")
	for _, terminate := range []bool{false, true} {
		payloads, oversize := Pack(entries, 512, terminate)
		assert.Zero(t, oversize)
		var got []string
		for _, p := range payloads {
			require.LessOrEqual(t, len(p), 512)
			s := string(p)
			if terminate {
				require.True(t, strings.HasSuffix(s, "\n"))
				s = strings.TrimSuffix(s, "\n")
			}
			got = append(got, strings.Split(s, "\n")...)
		}
		want := strings.Split(strings.Join(entries, "\n"), "\n")
		assert.Equal(t, want, got, "every line once, in order")
		assert.Greater(t, len(payloads), 10)
		// Packets are filled: all but the last leave less room than the next entry.
		assert.Less(t, len(payloads), len(entries)/5)
	}
}

func TestPackKeepsEntryWhole(t *testing.T) {
	payloads, _ := Pack([]string{strings.Repeat("a", 20) + ":1|c", "neg:0|g\nneg:-5|g"}, 30, false)
	require.Len(t, payloads, 2)
	assert.Equal(t, "neg:0|g\nneg:-5|g", string(payloads[1]))
}

func TestPackOversizeAlone(t *testing.T) {
	long := strings.Repeat("x", 100) + ":1|c"
	payloads, oversize := Pack([]string{"a:1|c", long, "b:1|c"}, 64, false)
	assert.Equal(t, 1, oversize)
	require.Len(t, payloads, 3)
	assert.Equal(t, "a:1|c", string(payloads[0]))
	assert.Equal(t, long, string(payloads[1]))
	assert.Equal(t, "b:1|c", string(payloads[2]))
}

func TestPackEmpty(t *testing.T) {
	payloads, oversize := Pack(nil, 1432, false)
	assert.Empty(t, payloads)
	assert.Zero(t, oversize)
}
