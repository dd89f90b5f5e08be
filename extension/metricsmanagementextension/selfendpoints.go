package metricsmanagementextension

import (
	"context"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.opentelemetry.io/collector/service/hostcapabilities"
	"go.uber.org/zap"
)

var _ extensioncapabilities.ConfigSnapshotWatcher = (*managementExtension)(nil)

// NotifyConfigSnapshot learns the collector's own listening endpoints from
// its effective config (called after the extensions start, before the
// pipelines): every `endpoint` of every receiver, with the receiver's
// defaults filled in, and this extension's own endpoint. The destination
// policy refuses providers that would export into them.
func (x *managementExtension) NotifyConfigSnapshot(ctx context.Context, cs extensioncapabilities.ConfigSnapshot) error {
	eps := receiverEndpoints(cs.Effective(), x.engine.ComponentFactory())
	if ep := x.cfg.NetAddr.Endpoint; ep != "" {
		eps = append(eps, ep)
	}
	x.engine.SetSelfEndpoints(ctx, eps)
	x.settings.Logger.Debug("Destination policy: the collector's own endpoints", zap.Strings("endpoints", x.engine.SelfEndpoints()))
	return nil
}

// receiverEndpoints returns the endpoints of the receivers of conf. A
// receiver whose factory is known is unmarshalled over its default config
// and marshalled back, so that endpoints left to their defaults (an empty
// `grpc:` of otlp is localhost:4317) count; otherwise its raw config is read.
func receiverEndpoints(conf *confmap.Conf, factories hostcapabilities.ComponentFactory) []string {
	if conf == nil {
		return nil
	}
	recv, err := conf.Sub("receivers")
	if err != nil {
		return nil
	}
	var out []string
	for name, raw := range recv.ToStringMap() {
		m, _ := raw.(map[string]any)
		var id component.ID
		if factories != nil && id.UnmarshalText([]byte(name)) == nil {
			if eff := effectiveConfig(factories, id, m); eff != nil {
				m = eff
			}
		}
		collectEndpoints(m, &out)
	}
	sort.Strings(out)
	return out
}

func effectiveConfig(factories hostcapabilities.ComponentFactory, id component.ID, raw map[string]any) map[string]any {
	f := factories.GetFactory(component.KindReceiver, id.Type())
	if f == nil {
		return nil
	}
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(raw).Unmarshal(cfg); err != nil {
		return nil
	}
	out := confmap.New()
	if err := out.Marshal(cfg); err != nil {
		return nil
	}
	return out.ToStringMap()
}

// collectEndpoints appends every string value of an "endpoint" key, at any depth.
func collectEndpoints(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && strings.EqualFold(k, "endpoint") && s != "" {
				*out = append(*out, s)
				continue
			}
			collectEndpoints(e, out)
		}
	case []any:
		for _, e := range x {
			collectEndpoints(e, out)
		}
	}
}
