package etcdconf

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"ok", func(*Config) {}, ""},
		{"no endpoints", func(c *Config) { c.Endpoints = nil }, "x.etcd.endpoints: must list the etcd client URLs"},
		{"empty endpoint", func(c *Config) { c.Endpoints = []string{" "} }, "x.etcd.endpoints[0]: is empty"},
		{"timeouts", func(c *Config) { c.RequestTimeout = 0 }, "x.etcd.request_timeout"},
		{"sub-second lease", func(c *Config) { c.LeaseTTL = 500 * time.Millisecond }, "x.etcd.lease_ttl: 500ms is not a whole number of seconds"},
		{"fractional lease", func(c *Config) { c.LeaseTTL = 1500 * time.Millisecond }, "x.etcd.lease_ttl"},
		{"unset lease", func(c *Config) { c.LeaseTTL = 0 }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Endpoints = []string{"http://127.0.0.1:2379"}
			tt.mutate(&c)
			err := c.Validate("x.etcd")
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestEffectiveValues(t *testing.T) {
	c := Config{Prefix: "/a"}
	assert.Equal(t, "/a/", c.EffectivePrefix())
	assert.Equal(t, DefaultPrefix, (&Config{}).EffectivePrefix())
	assert.Equal(t, DefaultLeaseTTL, c.EffectiveLeaseTTL())
}

func TestNewClientNeedsEndpoints(t *testing.T) {
	_, err := (&Config{}).NewClient(context.Background(), "definitions.etcd", zap.NewNop())
	require.ErrorContains(t, err, "definitions.etcd.endpoints")
}
