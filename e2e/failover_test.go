package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestProjectorFailover runs two projectors on one read database (here the
// event store's): exactly one is active. SIGKILL the active one while appends
// go on, and the standby takes over within seconds, from the checkpoint the
// dead one committed, leaving the read tables exact.
func TestProjectorFailover(t *testing.T) {
	t.Parallel()
	s := newStack(t, false, "PROJECTOR_BATCH_SIZE=20")
	api := s.startAPI(t)
	c := newClient(t, api.url, api.token)
	accounts := loadAccounts(t, c, 4)

	a := s.startProjector(t, "projector-a")
	b := s.startProjector(t, "projector-b")
	active, standby := exactlyOneActive(t, a, b)
	t.Logf("%s is active, %s stands by", active.name, standby.name)

	l := startLoad(c, accounts, 4)
	defer l.cancel()
	waitApplying(t, active)
	l.waitFor(t, 50)
	// The standby stays out of the way while the other works.
	if m := metrics(t, standby.url); m["projector_active"] != 0 || sum(m, "projector_events_applied_total") != 0 {
		t.Errorf("%s, the standby: active %v, applied %v events", standby.name, m["projector_active"], sum(m, "projector_events_applied_total"))
	}

	active.signal(t, syscall.SIGKILL)
	killed := time.Now()
	active.wait(t, 10*time.Second)
	eventually(t, 10*time.Second, func() (bool, string) {
		return standby.active(), standby.name + " has not taken over"
	})
	took := time.Since(killed)
	t.Logf("%s took over %s after the kill", standby.name, took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("the standby took %s to take over; want a few seconds at most", took)
	}
	waitApplying(t, standby)
	l.waitFor(t, 50)

	// The killed one, back, stands by.
	again := s.startProjector(t, active.name+"-restarted")
	if got, _ := exactlyOneActive(t, standby, again); got != standby {
		t.Errorf("after the restart %s is active; want %s to keep working", got.name, standby.name)
	}

	l.stop(t)
	s.waitCaughtUp(t, 60*time.Second)
	s.checkReadModel(t)
	s.verify(t)
	s.noProjectorErrors(t)
}

// exactlyOneActive waits until one of the projectors reports projector_active
// 1 and the other 0, and returns them in that order.
func exactlyOneActive(t *testing.T, a, b *service) (active, standby *service) {
	t.Helper()
	eventually(t, 30*time.Second, func() (bool, string) {
		ma, errA := scrape(a.url)
		mb, errB := scrape(b.url)
		if errA != nil || errB != nil {
			return false, fmt.Sprintf("scrape: %v, %v", errA, errB)
		}
		switch {
		case ma["projector_active"] == 1 && mb["projector_active"] == 0:
			active, standby = a, b
		case ma["projector_active"] == 0 && mb["projector_active"] == 1:
			active, standby = b, a
		default:
			return false, fmt.Sprintf("projector_active: %s %v, %s %v", a.name, ma["projector_active"], b.name, mb["projector_active"])
		}
		return true, ""
	})
	// A standby only tries again every PROJECTOR_STANDBY_RETRY (100 ms): the
	// answer must still hold after a few of its attempts.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if !active.active() || standby.active() {
			t.Fatalf("%s and %s both active or both standing by", a.name, b.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return active, standby
}
