package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/projection"
	"github.com/evbank/bank/internal/store"
)

// rebuildInterrupted is the exit status of a rebuild stopped by a signal:
// its progress is kept, and running it again resumes.
const rebuildInterrupted = 3

// rebuild is `projector rebuild [name...]` (DESIGN §5): it rebuilds the named
// projections (default all) from the start of the event store into new tables
// beside the live ones, which keep serving, and the live projector keeps
// running; then swaps them in. It listens on no address. Progress goes to
// stderr as one updating line when that is a terminal, else into the log
// every 10 s. SIGINT/SIGTERM stop it after the current chunk (exit status 3).
func rebuild(ctx context.Context, cfg config, log zerolog.Logger, args []string, stdout io.Writer) error {
	return runRebuild(ctx, cfg, log, args, stdout, os.Stderr, isTerminal(os.Stderr))
}

func runRebuild(ctx context.Context, cfg config, log zerolog.Logger, names []string, stdout, stderr io.Writer, terminal bool) error {
	if _, err := projection.ByName(names); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if cfg.MigrateOnStart {
		if err := store.Migrate(cfg.DatabaseURL, store.EventStoreSchema); err != nil {
			return err
		}
		if err := store.Migrate(cfg.ReadDatabaseURL, store.ReadModelSchema); err != nil {
			return err
		}
	}
	events, read, err := pools(ctx, cfg)
	if err != nil {
		return err
	}
	defer events.Close()
	defer read.Close()

	p := &progressPrinter{w: stderr, terminal: terminal, every: 10 * time.Second}
	if terminal {
		log = log.Hook(p) // a log line clears the progress line first
	}
	p.log = log
	res, err := projection.Rebuild(ctx, events, read, projection.RebuildOptions{
		Projections:   names,
		UpcastContext: cfg.UpcastContext(),
		StopTimeout:   cfg.ShutdownTimeout,
		Progress:      p.update,
		Log:           log,
	})
	p.end()
	if errors.Is(err, projection.ErrRebuildInterrupted) {
		return &exitError{code: rebuildInterrupted, err: err}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rebuilt %s from %d events (%d read by this run) in %s, %.0f events/s; checkpoint %s; live tables locked %s\n",
		strings.Join(res.Projections, ", "), res.Events, res.Folded, res.Duration.Round(time.Millisecond),
		float64(res.Folded)/res.Duration.Seconds(), res.Position, res.Locked.Round(time.Microsecond))
	return nil
}

// isTerminal reports whether f is a character device, as a terminal is.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressPrinter shows a rebuild's progress: on a terminal, one line
// redrawn in place (each phase leaves its last state on a line of its own);
// otherwise a log line when a phase starts and every so often.
type progressPrinter struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	every    time.Duration
	log      zerolog.Logger

	phase            string
	drawn            bool // a line is on screen, not ended
	lastDraw, logged time.Time
}

func (p *progressPrinter) update(pr projection.RebuildProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	changed := pr.Phase != p.phase
	p.phase = pr.Phase
	if p.terminal {
		if !changed && now.Sub(p.lastDraw) < 100*time.Millisecond {
			return
		}
		if changed && p.drawn {
			fmt.Fprintln(p.w)
		}
		fmt.Fprint(p.w, "\r\x1b[K"+progressLine(pr))
		p.drawn, p.lastDraw = true, now
		return
	}
	if !changed && now.Sub(p.logged) < p.every {
		return
	}
	p.logged = now
	ev := p.log.Info().Str("phase", pr.Phase).Int64("events_done", pr.Done).Int64("events_total", pr.Total).
		Float64("events_per_second", math.Round(pr.Rate)).Dur("elapsed", pr.Elapsed.Round(time.Millisecond))
	if pr.Phase == projection.PhaseLoad && pr.ETA > 0 {
		ev = ev.Dur("eta", pr.ETA.Round(time.Second))
	}
	if pr.Detail != "" {
		ev = ev.Str("detail", pr.Detail)
	}
	ev.Msg("rebuild progress")
}

// end finishes the line on screen.
func (p *progressPrinter) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// Run implements zerolog.Hook: a log line about to be written to the same
// terminal clears the progress line, which the next update redraws.
func (p *progressPrinter) Run(*zerolog.Event, zerolog.Level, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
		p.lastDraw = time.Time{}
	}
}

// progressLine is the terminal line: phase, events, rate, ETA, detail.
func progressLine(pr projection.RebuildProgress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rebuild %-8s", pr.Phase)
	if pr.Total > 0 {
		fmt.Fprintf(&b, " %5.1f%%", 100*float64(pr.Done)/float64(pr.Total))
	}
	fmt.Fprintf(&b, "  %s/%s events  %s events/s", thousands(pr.Done), thousands(pr.Total), thousands(int64(pr.Rate)))
	if pr.Phase == projection.PhaseLoad && pr.ETA > 0 {
		fmt.Fprintf(&b, "  ETA %s", pr.ETA.Round(time.Second))
	}
	fmt.Fprintf(&b, "  %s", pr.Elapsed.Round(time.Second))
	if pr.Detail != "" {
		b.WriteString("  " + pr.Detail)
	}
	return b.String()
}

// thousands formats n with thousands separators: 1,234,567.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
