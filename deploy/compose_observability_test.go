package deploy_test

import (
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeObservability: the `observability` profile adds Prometheus and
// Grafana and nothing else; Prometheus loads this repository's configuration
// and rules and scrapes the api and the projector where they listen; Grafana
// is provisioned with the data source and the dashboards; no host port is
// taken twice.
func TestComposeObservability(t *testing.T) {
	t.Parallel()
	plain := loadCompose(t)
	p := loadCompose(t, "observability")
	var added []string
	for name, s := range p.Services {
		if _, ok := plain.Services[name]; !ok {
			added = append(added, name)
			if !slices.Equal(s.Profiles, []string{"observability"}) {
				t.Errorf("%s: profiles %v, want [observability]", name, s.Profiles)
			}
		}
	}
	slices.Sort(added)
	if want := []string{"grafana", "prometheus"}; !slices.Equal(added, want) {
		t.Fatalf("the observability profile adds %v, want %v", added, want)
	}

	prom, graf := p.Services["prometheus"], p.Services["grafana"]
	for _, s := range []types.ServiceConfig{prom, graf} {
		if !pinnedImage.MatchString(s.Image) {
			t.Errorf("%s: image %q is not pinned by tag and digest", s.Name, s.Image)
		}
	}
	if !strings.HasPrefix(prom.Image, "prom/prometheus:") || !strings.HasPrefix(graf.Image, "grafana/grafana:") {
		t.Errorf("images %q, %q: want the official prom/prometheus and grafana/grafana", prom.Image, graf.Image)
	}

	// Prometheus reads deploy/prometheus as its /etc/prometheus.
	promDir := bindSource(t, p, prom, "/etc/prometheus")
	if promDir != "deploy/prometheus" {
		t.Errorf("prometheus: /etc/prometheus is %s, want deploy/prometheus", promDir)
	}
	if !slices.Contains(prom.Command, "--config.file=/etc/prometheus/prometheus.yml") {
		t.Errorf("prometheus: command %v does not load /etc/prometheus/prometheus.yml", prom.Command)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "deploy/prometheus/prometheus.yml", &cfg)
	if !slices.Equal(cfg.RuleFiles, []string{"alerts.yml"}) {
		t.Errorf("prometheus.yml loads rule files %v, want [alerts.yml]", cfg.RuleFiles)
	}
	var targets []string
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	slices.Sort(targets)
	want := []string{listenTarget(t, p, "api", "HTTP_ADDR"), listenTarget(t, p, "projector", "PROJECTOR_ADDR")}
	slices.Sort(want)
	if !slices.Equal(targets, want) {
		t.Errorf("prometheus scrapes %v, want %v (the services where they listen)", targets, want)
	}

	// Grafana: provisioning and dashboards from the repository; the
	// dashboard provider reads where the dashboards are mounted; the data
	// source reaches the prometheus service.
	if got := bindSource(t, p, graf, "/etc/grafana/provisioning"); got != "deploy/grafana/provisioning" {
		t.Errorf("grafana: /etc/grafana/provisioning is %s, want deploy/grafana/provisioning", got)
	}
	var providers struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "deploy/grafana/provisioning/dashboards/bank.yml", &providers)
	if len(providers.Providers) != 1 {
		t.Fatalf("want one dashboard provider, got %+v", providers.Providers)
	}
	if got := bindSource(t, p, graf, providers.Providers[0].Options.Path); got != "deploy/grafana/dashboards" {
		t.Errorf("grafana: the provider's path %s is %s, want deploy/grafana/dashboards", providers.Providers[0].Options.Path, got)
	}
	var ds struct {
		Datasources []struct{ URL string } `yaml:"datasources"`
	}
	readYAML(t, "deploy/grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("grafana's data source %+v, want http://prometheus:9090 (the service and Prometheus' port)", ds.Datasources)
	}
	if home := graf.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home == nil ||
		!strings.HasPrefix(*home, providers.Providers[0].Options.Path+"/") {
		t.Errorf("grafana: the home dashboard %v is not one of the provisioned dashboards", home)
	}

	// Each host port once: Prometheus' own 9090 is the projector's on the host.
	seen := map[string]string{}
	for name, s := range p.Services {
		for _, pc := range s.Ports {
			if other, dup := seen[pc.Published]; dup {
				t.Errorf("host port %s is published by %s and %s", pc.Published, other, name)
			}
			seen[pc.Published] = name
		}
	}
}

// bindSource is the repository path (slash-separated, relative to the root)
// bound read-only at target in s.
func bindSource(t *testing.T, p *types.Project, s types.ServiceConfig, target string) string {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			if !v.ReadOnly {
				t.Errorf("%s: %s is mounted read-write", s.Name, target)
			}
			rel, err := filepath.Rel(p.WorkingDir, v.Source)
			if err != nil {
				t.Fatal(err)
			}
			return filepath.ToSlash(rel)
		}
	}
	t.Errorf("%s: nothing is bound at %s", s.Name, target)
	return ""
}

// listenTarget is service:port, the port the service's address variable names.
func listenTarget(t *testing.T, p *types.Project, service, addrKey string) string {
	t.Helper()
	v := p.Services[service].Environment[addrKey]
	if v == nil {
		t.Fatalf("%s: %s is not set", service, addrKey)
	}
	_, port, err := net.SplitHostPort(*v)
	if err != nil {
		t.Fatalf("%s: %s: %v", service, addrKey, err)
	}
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("%s: %s port %q", service, addrKey, port)
	}
	return service + ":" + port
}
