package stream

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"go.uber.org/zap"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// FuzzCompileFilter compiles any stream filter: no panic, errors name a
// filter field, a literal name matches itself, and lit* matches lit+suffix.
func FuzzCompileFilter(f *testing.F) {
	f.Add("http_requests_total", "http_*", "[a-z]*_total", "GET|POST", "cpu.usage")
	f.Add("a", "[!b]?", `\*`, ".*", "b")
	f.Add("x", "[]]", "[", "(", "")
	f.Add("é", "?", "[é-ü]", `\p{L}+`, "éa")
	f.Fuzz(func(t *testing.T, literal, glob, exclude, re, name string) {
		spec := &pb.MetricFilter{
			Names:        []string{glob},
			ExcludeNames: []string{exclude},
			NameRegex:    re,
			LabelMatchers: []*pb.LabelMatcher{
				{Name: "l", Operator: pb.MatchOperator_MATCH_OPERATOR_REGEX, Value: re},
				{Name: "m", Operator: pb.MatchOperator_MATCH_OPERATOR_NOT_EQUAL, Value: literal},
			},
		}
		flt, err := CompileFilter(spec)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "filter.") {
				t.Fatalf("error %q does not name the filter field", err)
			}
		} else {
			_ = flt.MatchMetric(name, pb.MetricType_METRIC_TYPE_GAUGE, "s")
			_ = flt.MatchMetric(literal, pb.MetricType_METRIC_TYPE_HISTOGRAM, "")
		}
		if literal == "" || strings.ContainsAny(literal, `*?[\`) {
			return
		}
		lit, err := CompileFilter(&pb.MetricFilter{Names: []string{literal}})
		if !utf8.ValidString(literal) {
			// one rule for names and globs (metricfilter): names are UTF-8
			if err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
				t.Fatalf("name %q of invalid UTF-8: %v", literal, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("literal name %q: %v", literal, err)
		}
		if !lit.MatchMetric(literal, pb.MetricType_METRIC_TYPE_COUNTER, "") {
			t.Fatalf("literal %q does not match itself", literal)
		}
		prefix, err := CompileFilter(&pb.MetricFilter{Names: []string{literal + "*"}})
		if !utf8.ValidString(literal) {
			if err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
				t.Fatalf("glob %q of invalid UTF-8: %v", literal+"*", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("glob %q: %v", literal+"*", err)
		}
		if !prefix.MatchMetric(literal+name, pb.MetricType_METRIC_TYPE_COUNTER, "") {
			t.Fatalf("glob %q does not match %q", literal+"*", literal+name)
		}
	})
}

// segmentSeed is a segment file of batches first..first+n-1.
func segmentSeed(first uint64, n int) []byte {
	var out []byte
	for i := range n {
		out = appendRecord(out, newBatch(first+uint64(i), t1, [][]byte{[]byte("\x0a\x01g"), []byte("item")}))
	}
	return out
}

// FuzzReadSegment reads any segment file back: no panic; every indexed
// record reads back with its sequence; a torn tail is truncated away.
func FuzzReadSegment(f *testing.F) {
	f.Add(segmentSeed(1, 3))
	f.Add(segmentSeed(7, 1)[:40])
	f.Add(append(segmentSeed(1, 2), 0xff, 0xff, 0xff, 0x0f))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "00000000000000000001"+segmentSuffix)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		g, complete, err := readSegment(path)
		if err != nil {
			t.Fatalf("readSegment: %v", err)
		}
		if g == nil {
			return
		}
		defer g.f.Close()
		for i, off := range g.offsets {
			if _, err := readRecord(g.f, off, g.first+uint64(i)); err != nil {
				t.Fatalf("record %d of an indexed segment: %v", i, err)
			}
		}
		st, err := g.f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != g.size {
			t.Fatalf("file has %d bytes, the index %d (complete %v)", st.Size(), g.size, complete)
		}
	})
}

// FuzzRecoverSubscription reopens a replay log from any meta.json and
// segment: no panic; a recovered subscription's history is gap free and
// every batch it claims reads back.
func FuzzRecoverSubscription(f *testing.F) {
	spec, _ := (&pb.MetricFilter{Names: []string{"g"}}).MarshalVT()
	meta := func(next uint64) []byte {
		b, _ := json.Marshal(meta{SubscriptionID: "sub-1", QoS: 2, Filter: base64.StdEncoding.EncodeToString(spec), BatchSize: 5, NextSequence: next})
		return b
	}
	f.Add(meta(4), segmentSeed(1, 3))
	f.Add(meta(9), segmentSeed(5, 4))
	f.Add(meta(2), segmentSeed(0, 2))
	f.Add(meta(1), []byte{})
	f.Add([]byte(`{"subscription_id":"sub-1","filter":"!!"}`), segmentSeed(1, 1))
	cfg := DefaultConfig()
	cfg.Replay.Directory = f.TempDir()
	h, err := NewHub(cfg, zap.NewNop())
	if err != nil {
		f.Fatal(err)
	}
	if err := h.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(h.Close)
	f.Fuzz(func(t *testing.T, metaJSON, segment []byte) {
		dir := filepath.Join(t.TempDir(), "sub-1")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, metaFile), metaJSON, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "00000000000000000001"+segmentSuffix), segment, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := h.recoverSubscription(dir, h.now())
		if err != nil {
			return
		}
		l := s.log.(*diskLog)
		defer l.close(true)
		gone := l.gone()
		if s.nextSeq < 1 || gone >= s.nextSeq {
			t.Fatalf("recovered log: gone up to %d, next sequence %d", gone, s.nextSeq)
		}
		for seq := gone + 1; seq < s.nextSeq; seq++ {
			e, ok := l.lookup(seq)
			if !ok {
				t.Fatalf("batch %d of (%d, %d) is missing", seq, gone, s.nextSeq)
			}
			if _, err := e.read(); err != nil {
				t.Fatalf("batch %d: %v", seq, err)
			}
		}
	})
}
