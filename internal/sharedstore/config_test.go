package sharedstore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func validConfig() Config {
	c := DefaultConfig()
	c.WriteEndpoint = "http://127.0.0.1:8428/api/v1/write"
	c.QueryEndpoint = "http://127.0.0.1:8428"
	c.Instance = "node-a"
	return c
}

func TestConfigValidateNamesTheField(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"valid", func(*Config) {}, ""},
		{"no write endpoint", func(c *Config) { c.WriteEndpoint = "" }, "write_endpoint: must be set"},
		{"write endpoint not http", func(c *Config) { c.WriteEndpoint = "ftp://x/api/v1/write" }, "write_endpoint: \"ftp://x/api/v1/write\" is not an http(s) URL"},
		{"no query endpoint", func(c *Config) { c.QueryEndpoint = "" }, "query_endpoint: must be set"},
		{"timeout", func(c *Config) { c.Timeout = 0 }, "timeout: must be positive"},
		{"no instance", func(c *Config) { c.Instance = "" }, "instance: must be set to a name unique in the fleet"},
		{"bad instance label", func(c *Config) { c.InstanceLabel = "node-id" }, "instance_label: \"node-id\" is not a label name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
