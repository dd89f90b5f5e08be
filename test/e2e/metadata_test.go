package e2e

import (
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
)

// ourModule is the module of our own components.
const ourModule = "github.com/metricsmodule/metricsmodule"

// distributionMetadata is the top-level metadata.yaml.
type distributionMetadata struct {
	Distribution struct {
		Name        string `mapstructure:"name"`
		Module      string `mapstructure:"module"`
		Version     string `mapstructure:"version"`
		Description string `mapstructure:"description"`
	} `mapstructure:"distribution"`
	Providers []struct {
		Scheme  string `mapstructure:"scheme"`
		Module  string `mapstructure:"module"`
		Version string `mapstructure:"version"`
	} `mapstructure:"providers"`
	Converters []moduleRef         `mapstructure:"converters"`
	Components []componentMetadata `mapstructure:"components"`
}

// moduleRef is a package of the distribution and the module release it comes from.
type moduleRef struct {
	Import  string `mapstructure:"import"`
	Module  string `mapstructure:"module"`
	Version string `mapstructure:"version"`
	Ours    bool   `mapstructure:"ours"`
}

// gomod is the entry builder-config.yaml has for the package.
func (m moduleRef) gomod() builderEntry {
	e := builderEntry{GoMod: m.Module + " " + m.Version}
	if m.Import != m.Module {
		e.Import = m.Import
	}
	return e
}

type componentMetadata struct {
	moduleRef `mapstructure:",squash"`
	Kind      string            `mapstructure:"kind"`
	Type      string            `mapstructure:"type"`
	Aliases   []string          `mapstructure:"aliases"`
	Stability map[string]string `mapstructure:"stability"`
}

type builderEntry struct {
	GoMod  string `mapstructure:"gomod"`
	Import string `mapstructure:"import"`
	Path   string `mapstructure:"path"`
}

type builderConfig struct {
	Dist struct {
		Name        string `mapstructure:"name"`
		Description string `mapstructure:"description"`
		Module      string `mapstructure:"module"`
		Version     string `mapstructure:"version"`
		OutputPath  string `mapstructure:"output_path"`
	} `mapstructure:"dist"`
	Providers  []builderEntry `mapstructure:"providers"`
	Converters []builderEntry `mapstructure:"converters"`
	Receivers  []builderEntry `mapstructure:"receivers"`
	Processors []builderEntry `mapstructure:"processors"`
	Exporters  []builderEntry `mapstructure:"exporters"`
	Extensions []builderEntry `mapstructure:"extensions"`
}

// load reads a YAML file into T; unknown keys are errors unless opts say otherwise.
func load[T any](t *testing.T, path string, opts ...confmap.UnmarshalOption) T {
	t.Helper()
	cm, err := confmaptest.LoadConf(path)
	require.NoError(t, err)
	var v T
	require.NoError(t, cm.Unmarshal(&v, opts...), "%s: unknown or mistyped key", path)
	return v
}

// entries drops path (ocb's local replace) so entries compare by module and import.
func entries(es []builderEntry) []builderEntry {
	out := make([]builderEntry, 0, len(es))
	for _, e := range es {
		out = append(out, builderEntry{GoMod: e.GoMod, Import: e.Import})
	}
	return sorted(out)
}

func sorted(es []builderEntry) []builderEntry {
	sort.Slice(es, func(i, j int) bool { return es[i].GoMod+es[i].Import < es[j].GoMod+es[j].Import })
	return es
}

// factoryInfo is what the distribution's factory of one type reports.
type factoryInfo struct {
	config    reflect.Type
	stability map[string]string
}

func stabilities(kv ...any) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		if s := kv[i+1].(component.StabilityLevel); s != component.StabilityLevelUndefined {
			out[kv[i].(string)] = strings.ToLower(s.String())
		}
	}
	return out
}

// distributionFactories indexes the factories of Components() by kind and type
// (aliases included).
func distributionFactories(t *testing.T) map[string]map[string]factoryInfo {
	t.Helper()
	f, err := Components()
	require.NoError(t, err)
	out := map[string]map[string]factoryInfo{"receiver": {}, "processor": {}, "exporter": {}, "extension": {}}
	for ty, r := range f.Receivers {
		out["receiver"][ty.String()] = factoryInfo{reflect.TypeOf(r.CreateDefaultConfig()), stabilities("metrics", r.MetricsStability(), "logs", r.LogsStability(), "traces", r.TracesStability())}
	}
	for ty, p := range f.Processors {
		out["processor"][ty.String()] = factoryInfo{reflect.TypeOf(p.CreateDefaultConfig()), stabilities("metrics", p.MetricsStability(), "logs", p.LogsStability(), "traces", p.TracesStability())}
	}
	for ty, e := range f.Exporters {
		out["exporter"][ty.String()] = factoryInfo{reflect.TypeOf(e.CreateDefaultConfig()), stabilities("metrics", e.MetricsStability(), "logs", e.LogsStability(), "traces", e.TracesStability())}
	}
	for ty, e := range f.Extensions {
		out["extension"][ty.String()] = factoryInfo{reflect.TypeOf(e.CreateDefaultConfig()), stabilities("extension", e.Stability())}
	}
	return out
}

// configPackage is the package of a type (a factory's config, a provider).
func configPackage(typ reflect.Type) string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	return typ.PkgPath()
}

// ownMetadata is the part of one of our components' metadata.yaml compared here.
type ownMetadata struct {
	Type   string `mapstructure:"type"`
	Status struct {
		Class     string              `mapstructure:"class"`
		Stability map[string][]string `mapstructure:"stability"`
	} `mapstructure:"status"`
}

// TestDistributionMetadataMatchesComponents keeps metadata.yaml in step with
// builder-config.yaml (the same modules, releases and distribution), with
// components.go (the same kinds, types and aliases, each listed once) and with
// what each factory reports (stability per signal) and, for ours, with the
// component's own metadata.yaml.
func TestDistributionMetadataMatchesComponents(t *testing.T) {
	md := load[distributionMetadata](t, filepath.Join("..", "..", "metadata.yaml"))
	bc := load[builderConfig](t, filepath.Join("..", "..", "builder-config.yaml"))

	t.Run("distribution", func(t *testing.T) {
		assert.Equal(t, bc.Dist.Name, md.Distribution.Name, "distribution.name")
		assert.Equal(t, bc.Dist.Module, md.Distribution.Module, "distribution.module")
		assert.Equal(t, bc.Dist.Version, md.Distribution.Version, "distribution.version")
		assert.Equal(t, bc.Dist.Description, md.Distribution.Description, "distribution.description")
	})

	t.Run("modules as in builder-config.yaml", func(t *testing.T) {
		var providers []builderEntry
		for _, p := range md.Providers {
			providers = append(providers, builderEntry{GoMod: p.Module + " " + p.Version})
		}
		assert.Equal(t, entries(bc.Providers), sorted(providers), "providers")
		schemes := map[string]string{}
		for _, f := range []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory(), yamlprovider.NewFactory()} {
			p := f.Create(confmap.ProviderSettings{})
			schemes[configPackage(reflect.TypeOf(p))] = p.Scheme()
		}
		for _, p := range md.Providers {
			assert.Equal(t, schemes[p.Module], p.Scheme, "scheme of provider %s", p.Module)
		}
		var converters []builderEntry
		for _, c := range md.Converters {
			converters = append(converters, c.gomod())
		}
		assert.Equal(t, entries(bc.Converters), sorted(converters), "converters")
		byKind := map[string][]builderEntry{}
		for _, c := range md.Components {
			byKind[c.Kind] = append(byKind[c.Kind], c.gomod())
		}
		for kind, want := range map[string][]builderEntry{"receiver": bc.Receivers, "processor": bc.Processors, "exporter": bc.Exporters, "extension": bc.Extensions} {
			assert.Equal(t, entries(want), sorted(byKind[kind]), "components of kind %s", kind)
		}
		var imports []string
		for _, c := range md.Components {
			imports = append(imports, c.Import)
		}
		for _, c := range md.Converters {
			imports = append(imports, c.Import)
		}
		want := append([]string(nil), ComponentImports...)
		sort.Strings(want)
		sort.Strings(imports)
		assert.Equal(t, want, imports, "imports of components.go")
	})

	t.Run("types and stability as the factories report", func(t *testing.T) {
		factories := distributionFactories(t)
		listed := map[string]map[string]bool{}
		for _, c := range md.Components {
			require.Contains(t, factories, c.Kind, "%s: kind must be receiver, processor, exporter or extension", c.Import)
			f, ok := factories[c.Kind][c.Type]
			if !assert.True(t, ok, "%s %q (%s): no such factory in components.go", c.Kind, c.Type, c.Import) {
				continue
			}
			if listed[c.Kind] == nil {
				listed[c.Kind] = map[string]bool{}
			}
			for _, ty := range append([]string{c.Type}, c.Aliases...) {
				assert.False(t, listed[c.Kind][ty], "%s %q is listed twice", c.Kind, ty)
				listed[c.Kind][ty] = true
				if a, ok := factories[c.Kind][ty]; assert.True(t, ok, "alias %q of %s %q: no such factory", ty, c.Kind, c.Type) {
					assert.Equal(t, f.config, a.config, "alias %q of %s %q is another component", ty, c.Kind, c.Type)
				}
			}
			assert.Equal(t, f.stability, c.Stability, "stability of %s %q", c.Kind, c.Type)
			// The config type says which package the factory is from, unless the
			// component keeps its config in a shared internal package (memory_limiter).
			if pkg := configPackage(f.config); !strings.Contains(pkg, "/internal/") {
				assert.True(t, pkg == c.Import || strings.HasPrefix(pkg, c.Import+"/"),
					"%s %q: the factory's config is in %s, not under import %s", c.Kind, c.Type, pkg, c.Import)
			}
			assert.Equal(t, c.Ours, c.Module == ourModule, "%s %q: ours is true exactly for %s", c.Kind, c.Type, ourModule)
			if c.Ours {
				own := load[ownMetadata](t, filepath.Join("..", "..", strings.TrimPrefix(c.Import, ourModule+"/"), "metadata.yaml"), confmap.WithIgnoreUnused())
				assert.Equal(t, c.Type, own.Type, "type of %s in its metadata.yaml", c.Import)
				assert.Equal(t, c.Kind, own.Status.Class, "class of %s in its metadata.yaml", c.Import)
				ownStability := map[string]string{}
				for level, signals := range own.Status.Stability {
					for _, s := range signals {
						ownStability[s] = level
					}
				}
				assert.Equal(t, ownStability, c.Stability, "stability of %s in its metadata.yaml", c.Import)
			}
		}
		for kind, types := range factories {
			for ty := range types {
				assert.True(t, listed[kind][ty], "%s %q of components.go is not in metadata.yaml", kind, ty)
			}
		}
	})
}
