package deploy_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var envName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// TestUsageTables checks the tables that `api -h` and `projector -h` print:
// the source of truth for the README and the compose file.
func TestUsageTables(t *testing.T) {
	t.Parallel()
	for _, p := range processes {
		vars := usageVars(t, p)
		seen := map[string]bool{}
		for _, v := range vars {
			switch {
			case !envName.MatchString(v.Name):
				t.Errorf("%s -h: variable %q is not an upper-case environment name", p, v.Name)
			case seen[v.Name]:
				t.Errorf("%s -h: %s listed twice", p, v.Name)
			case v.Default == "" || v.Meaning == "":
				t.Errorf("%s -h: %s has no default column or no meaning: %+v", p, v.Name, v)
			case strings.Contains(v.Meaning, "|"):
				t.Errorf("%s -h: the meaning of %s has a '|', which breaks the README's table", p, v.Name)
			}
			seen[v.Name] = true
		}
		if !byName(vars)["DATABASE_URL"].required() {
			t.Errorf("%s -h: DATABASE_URL is not marked (required)", p)
		}
	}
}

// TestReadmeConfigurationMatchesUsage keeps the README's configuration tables
// equal, row for row, to what `api -h` and `projector -h` print.
func TestReadmeConfigurationMatchesUsage(t *testing.T) {
	t.Parallel()
	readme := readFile(t, "README.md")
	for _, p := range processes {
		want := usageVars(t, p)
		got, err := readmeTable(readme, p)
		if err != nil {
			t.Errorf("README.md: %v", err)
		} else if diff := cmp.Diff(want, got); diff == "" {
			continue
		} else {
			t.Errorf("README.md's %s configuration table differs from `%s -h` (-usage +README):\n%s", p, p, diff)
		}
		t.Logf("the table `%s -h` asks for:\n%s", p, markdownTable(want))
	}
}

// readmeTable returns the rows of the table under the heading "### <process>"
// in the section "## Configuration", backticks removed.
func readmeTable(readme, process string) ([]envVar, error) {
	_, section, ok := strings.Cut(readme, "\n## Configuration\n")
	if !ok {
		return nil, fmt.Errorf(`no "## Configuration" section`)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	_, sub, ok := strings.Cut(section, "\n### "+process+"\n")
	if !ok {
		return nil, fmt.Errorf(`no "### %s" heading under "## Configuration"`, process)
	}
	if i := strings.Index(sub, "\n#"); i >= 0 {
		sub = sub[:i]
	}
	var rows []envVar
	header := true
	for _, line := range strings.Split(sub, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break // the end of the table
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			return nil, fmt.Errorf("%s table: row %q has %d cells, want 3", process, line, len(cells))
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(strings.ReplaceAll(cells[i], "`", ""))
		}
		switch {
		case header:
			if cells[0] != "variable" || cells[1] != "default" || cells[2] != "meaning" {
				return nil, fmt.Errorf("%s table: header %q, want | variable | default | meaning |", process, line)
			}
			header = false
		case strings.Trim(cells[0], "-:") == "":
			// the separator row
		default:
			rows = append(rows, envVar{Name: cells[0], Default: cells[1], Meaning: cells[2]})
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no table under \"### %s\"", process)
	}
	return rows, nil
}

// markdownTable is vars as the README writes them.
func markdownTable(vars []envVar) string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, v := range vars {
		def := v.Default
		if def != "-" && def != "(required)" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, v.Meaning)
	}
	return b.String()
}
