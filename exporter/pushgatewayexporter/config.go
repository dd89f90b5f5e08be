package pushgatewayexporter

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/metricsmodule/metricsmodule/exporter/pushgatewayexporter/internal/cumulative"
)

// Push methods of the Pushgateway API.
const (
	// MethodPut replaces all metrics of the grouping key.
	MethodPut = "PUT"
	// MethodPost replaces only the metrics with the same names as the pushed ones.
	MethodPost = "POST"
)

// Config is the exporter configuration.
type Config struct {
	// ClientConfig is the HTTP client: endpoint (the Pushgateway base URL),
	// tls, headers, timeout (of one push attempt), auth (an authenticator
	// extension), compression, proxy_url, ...
	ClientConfig confighttp.ClientConfig `mapstructure:",squash"`
	// QueueConfig is the exporterhelper sending queue.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	// RetryConfig is the exporterhelper retry of failed pushes.
	RetryConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`

	// Job is the value of the job grouping label (required).
	Job string `mapstructure:"job"`
	// Method is PUT (replace the whole group) or POST (replace only the
	// pushed metric names).
	Method string `mapstructure:"method"`
	// GroupingLabels are fixed grouping labels added to the push URL.
	GroupingLabels map[string]string `mapstructure:"grouping_labels"`
	// GroupingFromResource names resource attributes whose values become
	// grouping labels (the label name is the attribute name in Prometheus
	// form, e.g. service.instance.id -> service_instance_id).
	GroupingFromResource []string `mapstructure:"grouping_from_resource"`
	// Namespace is prefixed to every metric name.
	Namespace string `mapstructure:"namespace"`
	// AddMetricSuffixes adds the unit and type suffixes of the OpenTelemetry
	// to Prometheus conventions (_seconds, _bytes, _total, _ratio).
	AddMetricSuffixes bool `mapstructure:"add_metric_suffixes"`
	// ResourceToTelemetryConversion copies all resource attributes into
	// labels of every series.
	ResourceToTelemetryConversion ResourceToTelemetryConfig `mapstructure:"resource_to_telemetry_conversion"`
	// BasicAuth sends HTTP basic authentication when Username is set.
	BasicAuth BasicAuthConfig `mapstructure:"basic_auth"`
	// BearerToken sends "Authorization: Bearer <token>" when set.
	BearerToken configopaque.String `mapstructure:"bearer_token"`
	// MetricExpiration is how long a series that receives no data keeps its
	// state (and is pushed) before it is forgotten.
	MetricExpiration time.Duration `mapstructure:"metric_expiration"`
}

// ResourceToTelemetryConfig turns resource attributes into labels.
type ResourceToTelemetryConfig struct {
	// Enabled copies every resource attribute into the labels of each series.
	Enabled bool `mapstructure:"enabled"`
}

// BasicAuthConfig is HTTP basic authentication.
type BasicAuthConfig struct {
	Username string              `mapstructure:"username"`
	Password configopaque.String `mapstructure:"password"`
}

var _ component.Config = (*Config)(nil)

var errNoJob = errors.New("job: must not be empty; set it to the job the Pushgateway groups these metrics under, e.g. job: nightly-import (there is no default)")

// Validate checks the configuration; messages name the field.
func (cfg *Config) Validate() error {
	var errs []error
	if err := validateEndpoint(cfg.ClientConfig.Endpoint); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(cfg.Job) == "" {
		errs = append(errs, errNoJob)
	}
	if m := strings.ToUpper(cfg.Method); m != MethodPut && m != MethodPost {
		errs = append(errs, fmt.Errorf("method: %q is not one of PUT, POST", cfg.Method))
	}
	seen := map[string]string{}
	for _, name := range sortedKeys(cfg.GroupingLabels) {
		if err := validateGroupingLabel(name); err != nil {
			errs = append(errs, fmt.Errorf("grouping_labels: %w", err))
			continue
		}
		seen[name] = "grouping_labels"
	}
	for i, attr := range cfg.GroupingFromResource {
		if attr == "" {
			errs = append(errs, fmt.Errorf("grouping_from_resource[%d]: must not be empty", i))
			continue
		}
		name, err := cumulative.LabelName(attr)
		if err == nil {
			err = validateGroupingLabel(name)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("grouping_from_resource[%d]: %w", i, err))
			continue
		}
		if other, dup := seen[name]; dup {
			errs = append(errs, fmt.Errorf("grouping_from_resource[%d]: label %q (from %q) is already set by %s", i, name, attr, other))
			continue
		}
		seen[name] = fmt.Sprintf("grouping_from_resource[%d]", i)
	}
	if cfg.BasicAuth.Username == "" && cfg.BasicAuth.Password != "" {
		errs = append(errs, errors.New("basic_auth.username: must be set when basic_auth.password is set"))
	}
	if cfg.BasicAuth.Username != "" && cfg.BearerToken != "" {
		errs = append(errs, errors.New("bearer_token: cannot be used together with basic_auth"))
	}
	if (cfg.BasicAuth.Username != "" || cfg.BearerToken != "") && cfg.ClientConfig.Headers != nil {
		if _, ok := cfg.ClientConfig.Headers.Get("Authorization"); ok {
			errs = append(errs, errors.New("headers: Authorization cannot be set together with basic_auth or bearer_token"))
		}
	}
	if cfg.MetricExpiration <= 0 {
		errs = append(errs, fmt.Errorf("metric_expiration: must be positive, got %s", cfg.MetricExpiration))
	}
	return errors.Join(errs...)
}

func validateEndpoint(endpoint string) error {
	if endpoint == "" {
		return errors.New("endpoint: must be set to the Pushgateway URL, e.g. http://localhost:9091")
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("endpoint: %q is not a valid URL: %w", endpoint, errors.Unwrap(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("endpoint: %q is not a valid URL: the scheme must be http or https", endpoint)
	}
	if u.Host == "" {
		return fmt.Errorf("endpoint: %q is not a valid URL: it has no host", endpoint)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("endpoint: %q must not have a query or fragment", endpoint)
	}
	return nil
}

func validateGroupingLabel(name string) error {
	switch {
	case name == "job":
		return errors.New(`"job" is set by the job setting`)
	case strings.HasPrefix(name, "__"):
		return fmt.Errorf("%q: label names starting with __ are reserved", name)
	case !isLegacyLabelName(name):
		return fmt.Errorf("%q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)", name)
	}
	return nil
}

func isLegacyLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9' && i > 0)) {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
