package provider

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// An update under a 1s deadline whose verify period is longer returns
// before the deadline with the operation in progress, then completes; its
// progress is observable to its end.
func TestUpdateUnderShortDeadlineCompletes(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), nil)
	_, nameA := newSink(t, "a")
	_, nameB := newSink(t, "b")
	create(t, e, sinkProvider("p", nameA))

	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := e.Update(dctx, &pb.UpdateProviderRequest{
		ProviderId: "p", Config: sinkProvider("", nameB),
		Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_BLUE_GREEN, VerifyPeriod: durationpb.New(2 * time.Second),
	})
	require.NoError(t, err, "the call returns before the caller's deadline")
	require.NoError(t, dctx.Err(), "it returned before the deadline")
	op := resp.GetOperation()
	require.NotNil(t, op)
	assert.False(t, op.GetDone())
	assert.Equal(t, OpUpdate, op.GetKind())
	assert.Equal(t, PhaseVerifying, op.GetPhase())
	assert.Equal(t, uint64(2), op.GetTargetVersion())
	assert.Contains(t, resp.GetMessage(), "in progress")

	var phases []string
	var last *pb.ProviderOperation
	eventually(t, func() bool {
		st, err := e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "p"})
		require.NoError(t, err)
		last = st.GetOperation()
		if n := len(phases); n == 0 || phases[n-1] != last.GetPhase() {
			phases = append(phases, last.GetPhase())
		}
		return last.GetDone()
	}, "the update runs to its end")
	assert.Equal(t, PhaseDone, last.GetPhase(), last.GetMessage())
	assert.EqualValues(t, 100, last.GetPercent())
	assert.Contains(t, last.GetMessage(), "promoted")
	assert.Contains(t, phases, PhaseVerifying)
	list, err := e.List(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	assert.Equal(t, uint64(2), list.GetProviders()[0].GetVersion())
	assert.True(t, list.GetProviders()[0].GetOperation().GetDone())
}

// async returns at once; another operation waits for it to end.
func TestUpdateAsync(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), nil)
	_, nameA := newSink(t, "a")
	_, nameB := newSink(t, "b")
	create(t, e, sinkProvider("p", nameA))
	resp, err := e.Update(ctx, &pb.UpdateProviderRequest{
		ProviderId: "p", Config: sinkProvider("", nameB), Async: true,
		Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_BLUE_GREEN, VerifyPeriod: durationpb.New(300 * time.Millisecond),
	})
	require.NoError(t, err)
	assert.False(t, resp.GetOperation().GetDone())
	_, err = e.Update(ctx, &pb.UpdateProviderRequest{ProviderId: "p", Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_RECREATE})
	require.ErrorIs(t, err, ErrFailedPrecondition, "one operation at a time")
	eventually(t, func() bool {
		st, err := e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "p"})
		require.NoError(t, err)
		return st.GetOperation().GetDone()
	}, "the update ends")
}

// A deletion that drains longer than the caller waits returns DRAINING
// with its operation; the provider goes away when it is done.
func TestDeleteUnderShortDeadline(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), nil)
	sink, name := newSink(t, "a")
	sink.gate = make(chan struct{})
	create(t, e, sinkProvider("p", name))
	require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("m", 0, 5)))
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	resp, err := e.Delete(dctx, &pb.DeleteProviderRequest{ProviderId: "p", DrainTimeout: durationpb.New(10 * time.Second)})
	require.NoError(t, err)
	assert.False(t, resp.GetDeleted())
	assert.Equal(t, pb.ProviderState_PROVIDER_STATE_DRAINING, resp.GetState())
	assert.Equal(t, PhaseDraining, resp.GetOperation().GetPhase())
	st, err := e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "p"})
	require.NoError(t, err)
	assert.Equal(t, OpDelete, st.GetOperation().GetKind())
	close(sink.gate)
	eventually(t, func() bool {
		_, err := e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "p"})
		return err != nil
	}, "the provider is gone once drained")
	assert.Equal(t, 5, sink.pointCount(), "the queue drained")
}

func TestUpdateMask(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, distribution(), nil)
	_, nameA := newSink(t, "a")
	_, nameB := newSink(t, "b")
	pc := sinkProvider("p", nameA)
	pc.Name, pc.Description, pc.Tags = "Production sink", "keeps me", map[string]string{"team": "obs"}
	create(t, e, pc)

	// The README's partial update: a config without name, with a mask.
	resp, err := e.Update(ctx, &pb.UpdateProviderRequest{
		ProviderId: "p", Config: sinkProvider("", nameB),
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"settings.custom.config", "limits.queue_size"}},
	})
	require.NoError(t, err)
	got := resp.GetProvider().GetConfig()
	assert.Equal(t, "Production sink", got.GetName(), "a partial update keeps the name")
	assert.Equal(t, "keeps me", got.GetDescription())
	assert.Equal(t, map[string]string{"team": "obs"}, got.GetTags())
	assert.Equal(t, nameB, got.GetSettings().GetCustom().GetConfig().AsMap()["name"])
	assert.Equal(t, "sink", got.GetSettings().GetCustom().GetExporterType())

	// A named field absent from config is cleared.
	resp, err = e.Update(ctx, &pb.UpdateProviderRequest{
		ProviderId: "p", Config: &pb.ProviderConfig{Name: "Renamed"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name", "description"}},
	})
	require.NoError(t, err)
	assert.Equal(t, "Renamed", resp.GetProvider().GetConfig().GetName())
	assert.Empty(t, resp.GetProvider().GetConfig().GetDescription())
	assert.Equal(t, nameB, resp.GetProvider().GetConfig().GetSettings().GetCustom().GetConfig().AsMap()["name"])

	tests := []struct {
		name  string
		req   *pb.UpdateProviderRequest
		field string
	}{
		{"unknown field", &pb.UpdateProviderRequest{ProviderId: "p", Config: &pb.ProviderConfig{}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"nmae"}}}, "update_mask.paths[0]"},
		{"path through a scalar", &pb.UpdateProviderRequest{ProviderId: "p", Config: &pb.ProviderConfig{}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name", "name.x"}}}, "update_mask.paths[1]"},
		{"empty mask", &pb.UpdateProviderRequest{ProviderId: "p", Config: &pb.ProviderConfig{}, UpdateMask: &fieldmaskpb.FieldMask{}}, "update_mask.paths"},
		{"mask without config", &pb.UpdateProviderRequest{ProviderId: "p", UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}}, "config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Update(ctx, tt.req)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.field, ve.Issues[0].GetField(), ve.Issues[0].GetMessage())
		})
	}
}
