package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Config is the config file: named contexts and the current one.
//
//	current-context: local
//	contexts:
//	  - name: local
//	    endpoint: localhost:4320
//	    management-endpoint: localhost:4321
//	  - name: prod
//	    endpoint: metrics.example.com:4320
//	    management-endpoint: metrics.example.com:4321
//	    tls: {enabled: true, ca-file: /etc/ssl/metrics-ca.pem}
//	    token-env: METRICS_TOKEN        # or token-file: ~/.config/metricsctl/prod.token
//	    # basic auth instead: username: ingester, password-env: METRICS_PASSWORD (or password-file)
type Config struct {
	CurrentContext string          `json:"current-context,omitempty"`
	Contexts       []ContextConfig `json:"contexts,omitempty"`
}

// ContextConfig is one named collector.
type ContextConfig struct {
	Name               string    `json:"name"`
	Endpoint           string    `json:"endpoint,omitempty"`
	ManagementEndpoint string    `json:"management-endpoint,omitempty"`
	TLS                TLSConfig `json:"tls,omitzero"`
	TokenEnv           string    `json:"token-env,omitempty"`
	TokenFile          string    `json:"token-file,omitempty"`
	Username           string    `json:"username,omitempty"`
	PasswordEnv        string    `json:"password-env,omitempty"`
	PasswordFile       string    `json:"password-file,omitempty"`
}

func (c *ContextConfig) password() (string, error) {
	if c.PasswordFile != "" {
		raw, err := os.ReadFile(expandHome(c.PasswordFile))
		if err != nil {
			return "", usageErrorf("password-file: %w", err)
		}
		return strings.TrimSpace(string(raw)), nil
	}
	if c.PasswordEnv != "" {
		return os.Getenv(c.PasswordEnv), nil
	}
	return "", nil
}

// TLSConfig is the TLS of a context.
type TLSConfig struct {
	Enabled            bool   `json:"enabled,omitempty"`
	CAFile             string `json:"ca-file,omitempty"`
	InsecureSkipVerify bool   `json:"insecure-skip-verify,omitempty"`
	ServerName         string `json:"server-name,omitempty"`
}

func (c *ContextConfig) token() (string, error) {
	if c.TokenFile != "" {
		raw, err := os.ReadFile(expandHome(c.TokenFile))
		if err != nil {
			return "", usageErrorf("token-file: %w", err)
		}
		return strings.TrimSpace(string(raw)), nil
	}
	if c.TokenEnv != "" {
		return os.Getenv(c.TokenEnv), nil
	}
	return "", nil
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

func defaultConfigPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "metricsctl", "config.yaml")
}

func (a *app) configFile() string {
	if a.configPath != "" {
		return a.configPath
	}
	if p := os.Getenv("METRICSCTL_CONFIG"); p != "" {
		return p
	}
	return defaultConfigPath()
}

// loadConfig reads the config file (a missing default file is an empty
// config), picks the context and applies the flags over it.
func (a *app) loadConfig() error {
	a.cfg = &Config{}
	path := a.configFile()
	if path != "" {
		raw, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist): // no file yet: no contexts
		case err != nil:
			return usageErrorf("config: %w", err)
		default:
			if err := yaml.UnmarshalStrict(raw, a.cfg); err != nil {
				return usageErrorf("config %s: %w (fix: see `metricsctl config --help` for the format)", path, err)
			}
		}
	}
	name := a.contextName
	if name == "" {
		name = a.cfg.CurrentContext
	}
	a.ctxCfg = &ContextConfig{Name: "default"}
	if name != "" {
		i := slices.IndexFunc(a.cfg.Contexts, func(c ContextConfig) bool { return c.Name == name })
		if i < 0 {
			return usageErrorf("context %q is not in %s (contexts: %s)", name, path, strings.Join(a.contextNames(), ", "))
		}
		c := a.cfg.Contexts[i]
		a.ctxCfg = &c
	}
	c := a.ctxCfg
	if a.endpoint != "" {
		c.Endpoint = a.endpoint
	}
	if a.mgmtAddr != "" {
		c.ManagementEndpoint = a.mgmtAddr
	}
	if a.tlsFlag || a.caFile != "" || a.skipVerify {
		c.TLS.Enabled = true
	}
	if a.caFile != "" {
		c.TLS.CAFile = a.caFile
	}
	if a.skipVerify {
		c.TLS.InsecureSkipVerify = true
	}
	if a.tokenFile != "" {
		c.TokenFile = a.tokenFile
	}
	if a.username != "" {
		c.Username = a.username
		c.PasswordEnv, c.PasswordFile = "METRICSCTL_PASSWORD", ""
	}
	switch a.output {
	case "table", "json", "yaml":
	default:
		return usageErrorf("--output %q: must be table, json or yaml", a.output)
	}
	return nil
}

func (a *app) contextNames() []string {
	var out []string
	for _, c := range a.cfg.Contexts {
		out = append(out, c.Name)
	}
	return out
}

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show and edit the contexts of the config file",
		Long: `The config file (~/.config/metricsctl/config.yaml, $METRICSCTL_CONFIG or --config)
names collectors as contexts:

  current-context: local
  contexts:
    - name: local
      endpoint: localhost:4320
      management-endpoint: localhost:4321
    - name: prod
      endpoint: metrics.example.com:4320
      management-endpoint: metrics.example.com:4321
      tls: {enabled: true, ca-file: /etc/ssl/metrics-ca.pem}
      token-env: METRICS_TOKEN          # or token-file: ~/.config/metricsctl/prod.token
      # or basic auth: username: ingester, password-env: METRICS_PASSWORD (or password-file)

Flags (--endpoint, --tls, --token-file, ...) override the context.`,
	}
	view := &cobra.Command{
		Use:   "view",
		Short: "Print the config file and the context in use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := yaml.Marshal(a.cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "# %s\n%s# in use: %s (endpoint %s, management %s)\n", a.configFile(), out, a.ctxCfg.Name, a.endpointOr(), a.mgmtOr())
			return nil
		},
	}
	var set ContextConfig
	var use bool
	setCtx := &cobra.Command{
		Use:   "set-context NAME",
		Short: "Create or change a context (and with --use make it current)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set.Name = args[0]
			i := slices.IndexFunc(a.cfg.Contexts, func(c ContextConfig) bool { return c.Name == set.Name })
			if i < 0 {
				a.cfg.Contexts = append(a.cfg.Contexts, set)
			} else {
				old := &a.cfg.Contexts[i]
				fl := cmd.Flags()
				if fl.Changed("endpoint") {
					old.Endpoint = set.Endpoint
				}
				if fl.Changed("management-endpoint") {
					old.ManagementEndpoint = set.ManagementEndpoint
				}
				if fl.Changed("token-env") {
					old.TokenEnv = set.TokenEnv
				}
				if fl.Changed("token-file") {
					old.TokenFile = set.TokenFile
				}
				if fl.Changed("tls") {
					old.TLS.Enabled = set.TLS.Enabled
				}
				if fl.Changed("ca-file") {
					old.TLS.CAFile = set.TLS.CAFile
				}
			}
			if use || a.cfg.CurrentContext == "" {
				a.cfg.CurrentContext = set.Name
			}
			return a.saveConfig()
		},
	}
	// the context's own flags are local to set-context
	sf := setCtx.Flags()
	sf.StringVar(&set.Endpoint, "endpoint", "", "MetricsService address")
	sf.StringVar(&set.ManagementEndpoint, "management-endpoint", "", "MetricsManagementService address")
	sf.StringVar(&set.TokenEnv, "token-env", "", "environment variable holding the token")
	sf.StringVar(&set.TokenFile, "token-file", "", "file holding the token")
	sf.BoolVar(&set.TLS.Enabled, "tls", false, "use TLS")
	sf.StringVar(&set.TLS.CAFile, "ca-file", "", "CA bundle")
	sf.BoolVar(&use, "use", false, "make it the current context")
	useCtx := &cobra.Command{
		Use:   "use-context NAME",
		Short: "Make a context the current one",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if !slices.Contains(a.contextNames(), args[0]) {
				return usageErrorf("context %q does not exist (contexts: %s)", args[0], strings.Join(a.contextNames(), ", "))
			}
			a.cfg.CurrentContext = args[0]
			return a.saveConfig()
		},
	}
	cmd.AddCommand(view, setCtx, useCtx)
	return cmd
}

func (a *app) saveConfig() error {
	path := a.configFile()
	if path == "" {
		return usageErrorf("no config path: set --config")
	}
	out, err := yaml.Marshal(a.cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return usageErrorf("config: %w", err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return usageErrorf("config: %w", err)
	}
	fmt.Fprintf(a.stderr, "wrote %s\n", path)
	return nil
}
