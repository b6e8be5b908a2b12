package deploy_test

import (
	"context"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// pinnedImage is an image reference with a tag for people and a digest for
// the engine.
var pinnedImage = regexp.MustCompile(`^[a-z0-9./-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$`)

// taggedImage is an image with a version tag (a digest may follow).
var taggedImage = regexp.MustCompile(`^[a-z0-9./-]+:[0-9][A-Za-z0-9._-]*(@sha256:[0-9a-f]{64})?$`)

// loadCompose loads docker-compose.yml as docker compose would, with an empty
// environment (so that no variable of the machine running the test leaks in)
// and the given profiles active (none: the services without a profile).
func loadCompose(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	dir, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")},
		cli.WithWorkingDirectory(dir), cli.WithEnv(nil), cli.WithConsistency(true), cli.WithProfiles(profiles))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

// appServices are the compose services that run the app image, each with the
// binary it runs (its build target, which is the binary's name).
var appServices = map[string]string{"migrate": "api", "api": "api", "projector": "projector"}

func TestComposeServices(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	var names []string
	for name := range p.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"api", "migrate", "nats", "postgres", "projector"}; !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}

	// The official nats image with JetStream on and its store on a named volume.
	n := p.Services["nats"]
	if !strings.HasPrefix(n.Image, "nats:") || !taggedImage.MatchString(n.Image) {
		t.Errorf("nats image %q: want the official nats image with a version tag", n.Image)
	}
	if !slices.Contains(n.Command, "-js") {
		t.Errorf("nats: command %v does not turn JetStream on (-js)", n.Command)
	}
	storeOnVolume := false
	for i, arg := range n.Command {
		if arg == "-sd" && i+1 < len(n.Command) {
			for _, v := range n.Volumes {
				_, declared := p.Volumes[v.Source]
				storeOnVolume = storeOnVolume || (v.Type == types.VolumeTypeVolume && declared && v.Target == n.Command[i+1])
			}
		}
	}
	if !storeOnVolume {
		t.Errorf("nats: the JetStream store (-sd) is not on a named volume: command %v, volumes %+v", n.Command, n.Volumes)
	}
	if hc := n.HealthCheck; hc == nil || hc.Disable || len(hc.Test) < 2 {
		t.Errorf("nats: healthcheck %+v", hc)
	}
	stages := dockerStages(t)

	pg := p.Services["postgres"]
	if !pinnedImage.MatchString(pg.Image) || !strings.HasPrefix(pg.Image, "postgres:") {
		t.Errorf("postgres image %q: want the official postgres image pinned by tag and digest", pg.Image)
	}
	if hc := pg.HealthCheck; hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] != "CMD" || hc.Test[1] != "pg_isready" {
		t.Errorf("postgres healthcheck %+v, want [CMD pg_isready ...]", hc)
	}
	for _, k := range []string{"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"} {
		if v := pg.Environment[k]; v == nil || *v == "" {
			t.Errorf("postgres: %s is not set", k)
		}
	}
	dataOnVolume := false
	for _, v := range pg.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/postgresql/data" {
			_, declared := p.Volumes[v.Source]
			dataOnVolume = declared
		}
	}
	if !dataOnVolume {
		t.Errorf("postgres: /var/lib/postgresql/data is not on a named volume declared under volumes: %+v", pg.Volumes)
	}

	for name, binary := range appServices {
		s := p.Services[name]
		if s.Build != nil && s.Build.Context != p.WorkingDir {
			t.Errorf("%s: build context %s, want the repository root %s (where .dockerignore is)", name, s.Build.Context, p.WorkingDir)
		}
		if s.Build == nil || s.Build.Target != binary {
			t.Errorf("%s: build %+v, want the Dockerfile's %q target", name, s.Build, binary)
		} else {
			if s.Build.Dockerfile != "" && filepath.Base(s.Build.Dockerfile) != "Dockerfile" {
				t.Errorf("%s: builds from %s, want the Dockerfile", name, s.Build.Dockerfile)
			}
			if _, ok := stages[binary]; !ok {
				t.Errorf("%s: the Dockerfile has no stage %q", name, binary)
			}
		}
		if len(s.Entrypoint) > 0 {
			t.Errorf("%s: entrypoint %v overrides the image's", name, s.Entrypoint)
		}
	}

	// migrate is one-shot: it runs `api migrate` and is not restarted.
	m := p.Services["migrate"]
	if !slices.Equal(m.Command, types.ShellCommand{"migrate"}) {
		t.Errorf("migrate: command %v, want [migrate]", m.Command)
	}
	if m.Restart != "" && m.Restart != types.RestartPolicyNo && m.Restart != types.RestartPolicyOnFailure {
		t.Errorf("migrate: restart %q, want no or on-failure for a one-shot service", m.Restart)
	}
	for _, name := range []string{"api", "projector"} {
		if r := p.Services[name].Restart; r != types.RestartPolicyUnlessStopped && r != types.RestartPolicyAlways {
			t.Errorf("%s: restart %q, want unless-stopped or always", name, r)
		}
		if len(p.Services[name].Command) > 0 {
			t.Errorf("%s: command %v, want the image's default (serve)", name, p.Services[name].Command)
		}
	}
}

func TestComposeDependencies(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	want := map[string]map[string]string{
		"migrate":   {"postgres": types.ServiceConditionHealthy},
		"api":       {"postgres": types.ServiceConditionHealthy, "migrate": types.ServiceConditionCompletedSuccessfully},
		"projector": {"postgres": types.ServiceConditionHealthy, "migrate": types.ServiceConditionCompletedSuccessfully, "nats": types.ServiceConditionHealthy},
		"postgres":  {},
		"nats":      {},
	}
	for name, deps := range want {
		got := map[string]string{}
		for dep, d := range p.Services[name].DependsOn {
			got[dep] = d.Condition
			if !d.Required {
				t.Errorf("%s: depends_on %s is not required", name, dep)
			}
		}
		if len(got) != len(deps) {
			t.Errorf("%s: depends_on %v, want %v", name, got, deps)
		}
		for dep, cond := range deps {
			if got[dep] != cond {
				t.Errorf("%s: depends_on %s with condition %q, want %q", name, dep, got[dep], cond)
			}
		}
	}
}

func TestComposeHealthchecks(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	if hc := p.Services["migrate"].HealthCheck; hc == nil || !hc.Disable {
		t.Errorf("migrate: healthcheck %+v, want disable: true (the image's would probe an api that never starts)", hc)
	}
	for _, name := range []string{"api", "projector"} {
		s := p.Services[name]
		hc := s.HealthCheck
		want := types.HealthCheckTest{"CMD", "/usr/local/bin/" + appServices[name], "healthcheck"}
		if hc == nil || hc.Disable || !slices.Equal(hc.Test, want) {
			t.Errorf("%s: healthcheck %+v, want test %v", name, hc, want)
			continue
		}
		if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil || hc.StartPeriod == nil {
			t.Errorf("%s: healthcheck without interval, timeout, retries and start_period", name)
		}
	}
}

// TestComposeEnvironment checks that every variable the compose file gives a
// process is one it reads (a typo would be ignored silently), that every
// required one is set, and that the values agree with the rest of the file.
func TestComposeEnvironment(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	vars := map[string]map[string]envVar{}
	for _, proc := range processes {
		vars[proc] = byName(usageVars(t, proc))
	}
	pg := p.Services["postgres"].Environment
	env := func(service, key string) string {
		if v := p.Services[service].Environment[key]; v != nil {
			return *v
		}
		if d := vars[appServices[service]][key].Default; d != "-" && d != "(required)" {
			return d
		}
		return ""
	}

	for name, binary := range appServices {
		s := p.Services[name]
		for key, val := range s.Environment {
			if _, ok := vars[binary][key]; !ok {
				t.Errorf("%s sets %s, which `%s -h` does not list", name, key, binary)
			}
			if val == nil {
				t.Errorf("%s: %s has no value (it would come from the host's environment)", name, key)
			}
		}
		for _, v := range vars[binary] {
			if v.required() && env(name, v.Name) == "" {
				t.Errorf("%s does not set %s, which %s requires", name, v.Name, binary)
			}
		}
		// The database URLs point at the postgres service, with its credentials.
		for _, key := range []string{"DATABASE_URL", "READ_DATABASE_URL"} {
			raw := env(name, key)
			if raw == "" {
				continue
			}
			u, err := url.Parse(raw)
			if err != nil {
				t.Errorf("%s: %s: %v", name, key, err)
				continue
			}
			pass, _ := u.User.Password()
			if u.Hostname() != "postgres" || u.Port() != "5432" || u.User.Username() != *pg["POSTGRES_USER"] ||
				pass != *pg["POSTGRES_PASSWORD"] || strings.TrimPrefix(u.Path, "/") != *pg["POSTGRES_DB"] {
				t.Errorf("%s: %s=%s does not reach the postgres service with its POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB", name, key, raw)
			}
		}
	}

	// migrate ran before them, so they do not migrate again.
	for _, name := range []string{"api", "projector"} {
		if got := env(name, "MIGRATE_ON_START"); got != "false" {
			t.Errorf("%s: MIGRATE_ON_START=%q, want false (the migrate service ran)", name, got)
		}
	}
	// Both processes must agree on what they share.
	for _, key := range []string{"DATABASE_URL", "READ_DATABASE_URL", "DEFAULT_CURRENCY"} {
		if a, pr := env("api", key), env("projector", key); a != pr {
			t.Errorf("%s differs: api %q, projector %q", key, a, pr)
		}
	}
	// The projector publishes to the nats service.
	if u, err := url.Parse(env("projector", "NATS_URL")); err != nil || u.Scheme != "nats" || u.Hostname() != "nats" || u.Port() != "4222" {
		t.Errorf("projector: NATS_URL=%q, want nats://nats:4222 (the nats service)", env("projector", "NATS_URL"))
	}
	if a, m := env("api", "DATABASE_URL"), env("migrate", "DATABASE_URL"); a != m {
		t.Errorf("migrate migrates %q, api uses %q", m, a)
	}

	// Each process publishes the port it listens on, and stops within its grace period.
	for name, addrKey := range map[string]string{"api": "HTTP_ADDR", "projector": "PROJECTOR_ADDR"} {
		s := p.Services[name]
		_, port, err := net.SplitHostPort(env(name, addrKey))
		if err != nil {
			t.Errorf("%s: %s: %v", name, addrKey, err)
			continue
		}
		published := false
		for _, pc := range s.Ports {
			published = published || strconv.FormatUint(uint64(pc.Target), 10) == port
		}
		if !published {
			t.Errorf("%s: listens on port %s (%s) but publishes %+v", name, port, addrKey, s.Ports)
		}
		shutdown, err := time.ParseDuration(env(name, "SHUTDOWN_TIMEOUT"))
		if err != nil {
			t.Errorf("%s: SHUTDOWN_TIMEOUT: %v", name, err)
			continue
		}
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= shutdown {
			t.Errorf("%s: stop_grace_period %v is not above SHUTDOWN_TIMEOUT %s: the engine would kill it mid-shutdown", name, s.StopGracePeriod, shutdown)
		}
	}
}
