package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, ...
	Args string
}

// stage is one FROM and what follows it.
type stage struct {
	Name, Base string // Base is the FROM image or the name of an earlier stage
	Body       []instruction
}

// dockerfile parses the Dockerfile into its instructions: enough for the
// checks here, not a full parser (no heredocs, no escape directive).
func dockerfile(t *testing.T) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(readFile(t, "Dockerfile")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if body, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{Cmd: strings.ToUpper(cmd), Args: strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile ends in a continuation line: %q", cur.String())
	}
	return out
}

// dockerStages returns the Dockerfile's stages by name, and checks the
// last one is "api": the default target.
func dockerStages(t *testing.T) map[string]stage {
	t.Helper()
	stages := map[string]stage{}
	var order []string
	for _, in := range dockerfile(t) {
		if in.Cmd != "FROM" {
			if len(order) == 0 {
				if in.Cmd != "ARG" {
					t.Fatalf("Dockerfile: %s before the first FROM", in.Cmd)
				}
				continue
			}
			s := stages[order[len(order)-1]]
			s.Body = append(s.Body, in)
			stages[order[len(order)-1]] = s
			continue
		}
		var words []string
		for _, w := range strings.Fields(in.Args) {
			if !strings.HasPrefix(w, "--") {
				words = append(words, w)
			}
		}
		s := stage{Base: words[0], Name: strconv.Itoa(len(order))}
		if len(words) == 3 && strings.EqualFold(words[1], "AS") {
			s.Name = words[2]
		}
		stages[s.Name] = s
		order = append(order, s.Name)
	}
	if len(order) == 0 || order[len(order)-1] != "api" {
		t.Errorf("Dockerfile stages %v: want the api stage last, the default target", order)
	}
	return stages
}

// effective returns the last value of instruction cmd in stage name or, when
// it has none, in the stage it is built from.
func effective(stages map[string]stage, name, cmd string) string {
	for s, ok := stages[name]; ok; s, ok = stages[s.Base] {
		for i := len(s.Body) - 1; i >= 0; i-- {
			if s.Body[i].Cmd == cmd {
				return s.Body[i].Args
			}
		}
	}
	return ""
}

var goDirective = regexp.MustCompile(`(?m)^go ([0-9.]+)$`)

func TestDockerfile(t *testing.T) {
	t.Parallel()
	stages := dockerStages(t)

	// Every base image is pinned by digest; the Go one is go.mod's version.
	m := goDirective.FindStringSubmatch(readFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	goImage := ""
	for _, s := range stages {
		if _, ok := stages[s.Base]; ok {
			continue
		}
		if !pinnedImage.MatchString(s.Base) {
			t.Errorf("stage %s: FROM %s is not pinned by tag and digest", s.Name, s.Base)
		}
		if strings.HasPrefix(s.Base, "golang:") {
			goImage = s.Base
		}
	}
	if !strings.HasPrefix(goImage, "golang:"+m[1]+"-") {
		t.Errorf("the builder image %q is not Go %s, go.mod's version", goImage, m[1])
	}

	build := strings.Join(runs(stages["build"]), "\n")
	for _, want := range []string{"CGO_ENABLED=0", "go build", "-trimpath", `-ldflags="-s -w"`, "./cmd/api", "./cmd/projector"} {
		if !strings.Contains(build, want) {
			t.Errorf("the build stage does not run %s: %s", want, build)
		}
	}
	if base := stages["runtime"].Base; !strings.HasPrefix(base, "gcr.io/distroless/static-debian12:nonroot@") {
		t.Errorf("runtime stage FROM %s, want distroless static nonroot", base)
	}

	for _, binary := range processes {
		if u := effective(stages, binary, "USER"); u != "nonroot" && !strings.HasPrefix(u, "nonroot:") {
			t.Errorf("target %s runs as %q, want nonroot", binary, u)
		}
		if got, want := execForm(t, effective(stages, binary, "ENTRYPOINT")), []string{"/usr/local/bin/" + binary}; !slices.Equal(got, want) {
			t.Errorf("target %s: ENTRYPOINT %q, want the exec form %q", binary, got, want)
		}
		hc := strings.Fields(effective(stages, binary, "HEALTHCHECK"))
		i := slices.Index(hc, "CMD")
		if i < 0 {
			t.Errorf("target %s: HEALTHCHECK without CMD", binary)
			continue
		}
		if got, want := execForm(t, strings.Join(hc[i+1:], " ")), []string{"/usr/local/bin/" + binary, "healthcheck"}; !slices.Equal(got, want) {
			t.Errorf("target %s: HEALTHCHECK CMD %q, want %q", binary, got, want)
		}
	}

	// It exposes the ports the binaries listen on by default.
	exposed := strings.Fields(effective(stages, "api", "EXPOSE"))
	for proc, key := range map[string]string{"api": "HTTP_ADDR", "projector": "PROJECTOR_ADDR"} {
		port := strings.TrimPrefix(byName(usageVars(t, proc))[key].Default, ":")
		if !slices.Contains(exposed, port) {
			t.Errorf("EXPOSE %v lacks %s's default %s port %s", exposed, proc, key, port)
		}
	}
}

func runs(s stage) []string {
	var out []string
	for _, in := range s.Body {
		if in.Cmd == "RUN" {
			out = append(out, in.Args)
		}
	}
	return out
}

func execForm(t *testing.T, args string) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(args), &v); err != nil {
		return []string{"(shell form) " + args}
	}
	return v
}

// TestDockerBuildContext checks that the build stage copies every file the
// binaries are built from (Go files and embedded migrations) and that
// .dockerignore leaves them in the context, so that the image builds
// although no docker engine runs here to prove it.
func TestDockerBuildContext(t *testing.T) {
	t.Parallel()
	ignore := dockerignore(t)
	for _, must := range []string{".git", ".data", "bin", "node_modules"} {
		if !ignored(ignore, must) {
			t.Errorf(".dockerignore does not keep %s out of the build context", must)
		}
	}

	var copied []string
	for _, in := range dockerStages(t)["build"].Body {
		if in.Cmd != "COPY" || strings.Contains(in.Args, "--from") {
			continue
		}
		f := strings.Fields(in.Args)
		for _, src := range f[:len(f)-1] {
			copied = append(copied, strings.TrimSuffix(strings.TrimPrefix(src, "./"), "/"))
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-f",
		`{{if and .Module .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}`,
		"./cmd/api", "./cmd/projector")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	modDir, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	files := []string{"go.mod", "go.sum"}
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		rel, ok := strings.CutPrefix(f, strings.TrimSpace(string(modDir))+"/")
		if !ok {
			t.Fatalf("%s is outside the module", f)
		}
		files = append(files, rel)
	}
	if len(files) < 10 {
		t.Fatalf("go list found only %v", files)
	}
	var notCopied, notInContext []string
	for _, f := range files {
		if !slices.ContainsFunc(copied, func(c string) bool { return f == c || strings.HasPrefix(f, c+"/") }) {
			notCopied = append(notCopied, f)
		}
		if ignored(ignore, f) {
			notInContext = append(notInContext, f)
		}
	}
	if len(notCopied) > 0 {
		t.Errorf("the build needs %d files that the Dockerfile does not copy (COPY %v): %v", len(notCopied), copied, firstFew(notCopied))
	}
	if len(notInContext) > 0 {
		t.Errorf("the build needs %d files that .dockerignore leaves out: %v", len(notInContext), firstFew(notInContext))
	}
}

func firstFew(s []string) []string {
	if len(s) > 5 {
		return append(s[:5:5], "...")
	}
	return s
}

// dockerignore returns the patterns of .dockerignore, refusing the syntax
// that ignored does not implement.
func dockerignore(t *testing.T) []string {
	t.Helper()
	var pats []string
	for _, line := range strings.Split(readFile(t, ".dockerignore"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") || strings.HasPrefix(line, "/") || strings.Contains(strings.TrimPrefix(line, "**/"), "**") {
			t.Fatalf(".dockerignore pattern %q: this test understands only PATTERN and **/PATTERN", line)
		}
		pats = append(pats, line)
	}
	return pats
}

// ignored reports whether the build context leaves out file (a slash path from
// the root): a pattern matches it or one of its parent directories; "**/"
// matches any number of leading directories.
func ignored(patterns []string, file string) bool {
	parts := strings.Split(file, "/")
	for _, p := range patterns {
		for end := 1; end <= len(parts); end++ {
			starts := []int{0}
			if strings.HasPrefix(p, "**/") {
				starts = make([]int, end)
				for i := range starts {
					starts[i] = i
				}
			}
			for _, start := range starts {
				if ok, _ := path.Match(strings.TrimPrefix(p, "**/"), strings.Join(parts[start:end], "/")); ok {
					return true
				}
			}
		}
	}
	return false
}

func TestIgnored(t *testing.T) {
	t.Parallel()
	pats := []string{".git", "*.md", "**/*_test.go", "**/testdata", "bin"}
	for file, want := range map[string]bool{
		".git/config":                   true,
		"README.md":                     true,
		"internal/x/README.md":          false,
		"internal/x/a_test.go":          true,
		"a_test.go":                     true,
		"internal/domain/testdata/f/1":  true,
		"internal/domain/money.go":      false,
		"bin/api":                       true,
		"cmd/bin/x.go":                  false,
		"migrations/0001_events.up.sql": false,
	} {
		if got := ignored(pats, file); got != want {
			t.Errorf("ignored(%q) = %v, want %v", file, got, want)
		}
	}
}
