package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Files of the repository that hold PromQL, relative to its root.
const (
	DashboardFile = "deploy/grafana/dashboards/bank.json"
	AlertsFile    = "deploy/prometheus/alerts.yml"
)

// Query is one PromQL expression and where it is.
type Query struct {
	Where string // the panel's title or the alert's name
	Expr  string
}

// Dashboard is the part of a Grafana dashboard JSON that is checked.
type Dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []Panel `json:"panels"`
}

// Panel is one Grafana panel (rows are panels too, without targets).
type Panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
}

// ReadDashboard reads the dashboard under root (the repository root).
func ReadDashboard(root string) (*Dashboard, error) {
	b, err := os.ReadFile(filepath.Join(root, DashboardFile))
	if err != nil {
		return nil, err
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", DashboardFile, err)
	}
	return &d, nil
}

// Rules is the part of a Prometheus rule file that is checked.
type Rules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ReadRules reads the alert rules under root.
func ReadRules(root string) (*Rules, error) {
	b, err := os.ReadFile(filepath.Join(root, AlertsFile))
	if err != nil {
		return nil, err
	}
	var r Rules
	if err := yaml.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", AlertsFile, err)
	}
	return &r, nil
}

// Queries are every PromQL expression of the dashboard and the alert rules.
func Queries(root string) ([]Query, error) {
	d, err := ReadDashboard(root)
	if err != nil {
		return nil, err
	}
	r, err := ReadRules(root)
	if err != nil {
		return nil, err
	}
	var qs []Query
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			qs = append(qs, Query{Where: "panel " + p.Title, Expr: t.Expr})
		}
	}
	for _, g := range r.Groups {
		for _, rule := range g.Rules {
			qs = append(qs, Query{Where: "alert " + rule.Alert, Expr: rule.Expr})
		}
	}
	return qs, nil
}

var (
	stringLit = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	matchers  = regexp.MustCompile(`\{[^}]*\}`)
	ranges    = regexp.MustCompile(`\[[^\]]*\]`)
	grouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	ident     = regexp.MustCompile(`\$?[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	keywords  = []string{"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring", "group_left", "group_right"}
)

// MetricNames are the metric names a PromQL expression selects, sorted and
// without repeats: what is left once strings, label matchers, ranges,
// grouping labels, functions, keywords and Grafana variables are taken out.
// It reads the PromQL written here, not every expression the language allows
// (a selector written as {__name__="x"} goes unseen).
func MetricNames(expr string) []string {
	e := stringLit.ReplaceAllString(expr, `""`)
	e = matchers.ReplaceAllString(e, " ")
	e = ranges.ReplaceAllString(e, " ")
	e = grouping.ReplaceAllString(e, " ")
	var names []string
	for _, m := range ident.FindAllStringSubmatchIndex(e, -1) {
		tok := e[m[0]:m[1]]
		if m[2] >= 0 || strings.HasPrefix(tok, "$") || slices.Contains(keywords, strings.ToLower(tok)) {
			continue // a function or aggregation, a variable, a keyword
		}
		if m[0] > 0 && strings.ContainsRune("0123456789.", rune(e[m[0]-1])) {
			continue // the exponent or unit of a number: 1e3, 5m
		}
		names = append(names, tok)
	}
	slices.Sort(names)
	return slices.Compact(names)
}
