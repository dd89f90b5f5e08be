package reads

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/tsdb"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/query"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

// mapMetadata is metadata by family.
type mapMetadata map[string]metadata.Metadata

// testBackend is a Store over a TSDB and metadata; with indexCount it
// counts series from the head's postings as package store does, otherwise
// it cannot count (the engine walks the series).
type testBackend struct {
	db         *tsdb.DB
	md         mapMetadata
	indexCount bool
	headIndex  bool
}

func (b *testBackend) EachHeadSeries(ctx context.Context, _, _ int64, ms []*labels.Matcher, fn func(labels.Labels) error) (bool, error) {
	if !b.headIndex {
		return false, nil
	}
	ix, err := b.db.Head().Index()
	if err != nil {
		return false, err
	}
	defer ix.Close()
	p, err := tsdb.PostingsForMatchers(ctx, ix, ms...)
	if err != nil {
		return false, err
	}
	var sb labels.ScratchBuilder
	for p.Next() {
		if err := ix.Series(p.At(), &sb, nil); err != nil {
			return false, err
		}
		if err := fn(sb.Labels()); err != nil {
			return true, err
		}
	}
	return true, p.Err()
}

func (b *testBackend) MetadataOf(family string) (metadata.Metadata, bool) {
	md, ok := b.md[family]
	return md, ok
}

func (b *testBackend) CountSeries(ctx context.Context, _, _ int64, ms ...*labels.Matcher) (int64, bool, error) {
	if !b.indexCount {
		return 0, false, nil
	}
	ix, err := b.db.Head().Index()
	if err != nil {
		return 0, false, err
	}
	defer ix.Close()
	p, err := tsdb.PostingsForMatchers(ctx, ix, ms...)
	if err != nil {
		return 0, false, err
	}
	var n int64
	for p.Next() {
		n++
	}
	return n, true, p.Err()
}

// testStore is a TSDB, its metadata and an engine over both.
type testStore struct {
	db      *tsdb.DB
	md      mapMetadata
	backend *testBackend
	eng     *Engine
}

func openStore(tb testing.TB, mutate func(*query.Config)) *testStore {
	tb.Helper()
	opts := tsdb.DefaultOptions()
	opts.OutOfOrderTimeWindow = (3 * time.Hour).Milliseconds()
	db, err := tsdb.Open(tb.TempDir(), nil, nil, opts, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	cfg := query.DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	q, err := query.New(cfg, db, zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	md := mapMetadata{}
	b := &testBackend{db: db, md: md, indexCount: true, headIndex: true}
	return &testStore{db: db, md: md, backend: b, eng: New(q, b)}
}

// add appends one float sample per series at t.
func (s *testStore) add(tb testing.TB, t time.Time, v float64, series ...labels.Labels) {
	tb.Helper()
	app := s.db.Appender(context.Background())
	for _, ls := range series {
		if _, err := app.Append(0, ls, t.UnixMilli(), v); err != nil {
			tb.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// gauges returns n series of name with label id="%06d".
func gauges(name string, n int) []labels.Labels {
	out := make([]labels.Labels, n)
	for i := range out {
		out[i] = labels.FromStrings(labels.MetricName, name, "id", fmt.Sprintf("%06d", i))
	}
	return out
}

func tsOf(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func base64Token(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
