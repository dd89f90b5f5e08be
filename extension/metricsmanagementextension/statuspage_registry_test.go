package metricsmanagementextension

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/metricsmodule/metricsmodule/internal/provider"
)

// The status page names the etcd registry's state and who leads the
// scheduled deletions; a local registry shows no line.
func TestStatusPageRegistryLine(t *testing.T) {
	render := func(h provider.RegistryHealth) string {
		var buf bytes.Buffer
		require.NoError(t, pageTmpl.ExecuteTemplate(&buf, "table", pageData{Registry: h}))
		return buf.String()
	}
	out := render(provider.RegistryHealth{Backend: "etcd", Revision: 42, Leader: "host-a:17", Leading: true})
	assert.Contains(t, out, `Registry: etcd, revision 42`)
	assert.Contains(t, out, `led by <b class="leader">host-a:17</b> (this node)`)
	out = render(provider.RegistryHealth{Backend: "etcd", Degraded: true, Detail: "etcd down; fix: bring it back"})
	assert.Contains(t, out, "degraded</b>: etcd down; fix: bring it back")
	assert.Contains(t, out, "(no leader known)")
	assert.NotContains(t, out, "(this node)")
	assert.NotContains(t, render(provider.RegistryHealth{Backend: "storage"}), "Registry:")
}
