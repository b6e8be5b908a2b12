package e2e

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// TestProjectorCrashSafety SIGKILLs the projector at random moments while it
// applies small batches under a steady load of appends, restarts it each
// time, and then requires the read tables to be exactly the fold of the
// event store: every checkpoint is committed with its batch, so a batch cut
// short is applied again, whole, and nothing twice.
func TestProjectorCrashSafety(t *testing.T) {
	t.Parallel()
	s := newStack(t, true, "PROJECTOR_BATCH_SIZE=7")
	api := s.startAPI(t)
	c := newClient(t, api.url, api.token)
	accounts := loadAccounts(t, c, 6)

	proj := s.startProjector(t, "projector-1")
	l := startLoad(c, accounts, 6)
	defer l.cancel()
	const kills = 4
	for i := 1; i <= kills; i++ {
		// Let it take the lock and apply some batches, then kill it at a
		// random moment, most likely inside a batch's transaction.
		applied := waitApplying(t, proj)
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
		proj.signal(t, syscall.SIGKILL)
		if code := proj.wait(t, 10*time.Second); code != -1 {
			t.Fatalf("projector after SIGKILL: exit code %d", code)
		}
		t.Logf("kill %d: the projector had applied %v events", i, applied)
		proj = s.startProjector(t, fmt.Sprintf("projector-%d", i+1))
	}
	waitApplying(t, proj)
	l.waitFor(t, 20)
	l.stop(t)

	s.waitCaughtUp(t, 60*time.Second)
	facts := s.checkReadModel(t)
	events := 0
	for _, f := range facts {
		events += f.version
	}
	t.Logf("%d events in %d streams projected exactly across %d kills", events, len(facts), kills)
	s.verify(t)
	s.noProjectorErrors(t)
}

// waitApplying waits until the projector is active and has applied events
// to every projection, and returns how many it applied.
func waitApplying(t *testing.T, proj *service) float64 {
	t.Helper()
	var applied float64
	eventually(t, 30*time.Second, func() (bool, string) {
		m, err := scrape(proj.url)
		if err != nil {
			return false, err.Error()
		}
		applied = sum(m, "projector_events_applied_total")
		return m["projector_active"] == 1 && applied > 0, fmt.Sprintf("%s: active %v, %v events applied", proj.name, m["projector_active"], applied)
	})
	return applied
}
