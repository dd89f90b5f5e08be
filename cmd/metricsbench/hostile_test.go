package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// TestHostileQueriesOutcomes checks the queries of "hostile": the hostile
// ones are refused, the heavy legitimate ones answer.
func TestHostileQueriesOutcomes(t *testing.T) {
	cfg, err := parseHostileFlags([]string{"-clients", "1", "-request-size", "100"})
	require.NoError(t, err)
	s, err := startHostileServer(cfg, t.TempDir())
	require.NoError(t, err)
	defer func() { require.NoError(t, s.stop()) }()

	conn, err := streamDial(s.grpcAddr)
	require.NoError(t, err)
	defer conn.Close()
	c := pb.NewMetricsServiceClient(conn)
	ctx := context.Background()
	_, err = c.RecordBatchMetrics(ctx, streamRequest(0, 100))
	require.NoError(t, err)

	hc := &http.Client{Timeout: time.Minute}
	for _, q := range hostileQueries {
		t.Run(q.name, func(t *testing.T) {
			var got string
			if q.http {
				got = hostileHTTP(ctx, hc, s.httpAddr, q)
			} else {
				got = hostileGRPC(ctx, c, q)
			}
			switch {
			case q.hostile && q.http:
				assert.Equal(t, "HTTP 422", got)
			case q.hostile:
				assert.Equal(t, "ResourceExhausted", got)
			case q.http:
				assert.Equal(t, "HTTP 200", got)
			default:
				assert.Equal(t, "OK", got)
			}
		})
	}
}
