package deploy_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/evbank/bank/deploy"
)

func TestMetricNames(t *testing.T) {
	t.Parallel()
	for expr, want := range map[string][]string{
		`histogram_quantile(0.99, sum by (route, le) (rate(http_request_duration_seconds_bucket[$__rate_interval])))`: {"http_request_duration_seconds_bucket"},
		`sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.01`:               {"http_requests_total"},
		`(sum(projector_active) or vector(0)) < 1`:                                                                    {"projector_active"},
		`max by (projection) (projector_lag_seconds{projection="publisher"}) > 0.5`:                                   {"projector_lag_seconds"},
		`pgxpool_acquired_connections / on (instance, pool) group_left pgxpool_max_connections`:                       {"pgxpool_acquired_connections", "pgxpool_max_connections"},
		`rate(bank_commands_total{command="transfer", outcome!="ok"}[1m] offset 5m) * 1e3`:                            {"bank_commands_total"},
		`up unless on (job) absent(foo_total{a="by (x)"})`:                                                            {"foo_total", "up"},
	} {
		if got := deploy.MetricNames(expr); !slices.Equal(got, want) {
			t.Errorf("MetricNames(%s) = %v, want %v", expr, got, want)
		}
	}
}

// TestDashboard checks the dashboard's shape: every panel queries the
// provisioned Prometheus data source, ids are unique, panels fit the grid,
// and the topics the operators asked for each have a panel.
func TestDashboard(t *testing.T) {
	t.Parallel()
	d, err := deploy.ReadDashboard(root)
	if err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q, title %q: both are needed for a stable link", d.UID, d.Title)
	}
	uid := datasourceUID(t)
	ids := map[int]bool{}
	var names []string
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X < 0 || p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v leaves the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != uid {
			t.Errorf("panel %q: datasource %+v, want the provisioned prometheus (uid %q)", p.Title, p.Datasource, uid)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if len(deploy.MetricNames(tg.Expr)) == 0 {
				t.Errorf("panel %q: %q selects no metric", p.Title, tg.Expr)
			}
			names = append(names, deploy.MetricNames(tg.Expr)...)
		}
	}
	for _, want := range []string{
		"http_requests_total", "http_request_duration_seconds_bucket", "bank_commands_total",
		"bank_transfer_recoveries_total", "projector_lag_seconds", "projector_batch_failures_total",
		"projector_active", "pgxpool_acquired_connections",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("no panel shows %s", want)
		}
	}
}

// datasourceUID is the uid of the data source Grafana is provisioned with.
func datasourceUID(t *testing.T) string {
	t.Helper()
	var ds struct {
		Datasources []struct{ UID, Type, URL string } `yaml:"datasources"`
	}
	readYAML(t, "deploy/grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
		t.Fatalf("want one prometheus data source, got %+v", ds.Datasources)
	}
	return ds.Datasources[0].UID
}

func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// promtool is Debian's (package prometheus), which `make test` and .ci/run
// install; $PROMTOOL overrides it.
func promtool(t *testing.T) string {
	t.Helper()
	p := os.Getenv("PROMTOOL")
	if p == "" {
		var err error
		if p, err = exec.LookPath("promtool"); err != nil {
			// A failure, not a skip: untested alert rules would pass CI unnoticed.
			t.Fatal("promtool is not installed: install Debian's prometheus (`make test` does it as root: apt-get install prometheus) or set PROMTOOL")
		}
	}
	return p
}

func runPromtool(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool(t), args...)
	cmd.Dir = filepath.Join(root, "deploy", "prometheus")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAlertRules: the rules and the compose stack's Prometheus configuration
// are valid, and the unit tests of alerts_test.yml pass on their synthetic
// series.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	runPromtool(t, "check", "rules", "alerts.yml")
	runPromtool(t, "check", "config", "prometheus.yml")
	out := runPromtool(t, "test", "rules", "alerts_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules did not say SUCCESS:\n%s", out)
	}
}

// TestEveryAlertIsTested: each rule of alerts.yml has a promtool case where
// it fires and one where it stays quiet, so a rule cannot be added untested.
func TestEveryAlertIsTested(t *testing.T) {
	t.Parallel()
	rules, err := deploy.ReadRules(root)
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, "deploy/prometheus/alerts_test.yml", &tests)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("alert %s: alerts_test.yml has a firing case %v and a quiet case %v; want both", r.Alert, fires[r.Alert], quiet[r.Alert])
			}
		}
	}
	if n < 6 {
		t.Errorf("only %d alert rules", n)
	}
}
