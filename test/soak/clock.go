package soak

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The clock-step fault. The issue asks for "the clock of one node stepped
// by 30 s"; the soak's nodes are network namespaces of one host, and
// CLOCK_REALTIME cannot be set per namespace (time namespaces offset only
// CLOCK_MONOTONIC and CLOCK_BOOTTIME; Go reads the wall clock through the
// vDSO, so an LD_PRELOAD faketime does not reach it either). So the fault
// steps the host's CLOCK_REALTIME: every process on the machine sees it,
// every node of the soak, the load generators and anything else running
// there. That is why only `make soak` (SOAK_CLOCK=1, the test binary alone
// under the bench lock) draws it.
//
// The step is +ClockStep for the fault's window; the heal puts the clock
// back where it would have been had it never been stepped: the offset
// between CLOCK_REALTIME and CLOCK_MONOTONIC measured before the step is
// restored, so the time the window lasted is kept. That second step is
// -ClockStep: the daemons see one step each way.

// ClockStep is how far the clock fault steps the host's wall clock.
const ClockStep = 30 * time.Second

// epoch and now are the soak's own clock: the wall-clock time the package
// started plus the monotonic time since. Everything the recording stores
// is stamped with it, so the clock fault does not move the events it
// records (time.Now's wall reading jumps with the step; this does not).
var epoch = time.Now()

func now() time.Time { return epoch.Add(time.Since(epoch)) }

// wallStep is one step of the host clock being held.
type wallStep struct {
	mu sync.Mutex
	// offset is CLOCK_REALTIME - CLOCK_MONOTONIC before the step, in
	// nanoseconds: what restore puts back.
	offset  int64
	stepped bool
	done    chan struct{} // closed by restore: ends the signal watcher
	timer   *time.Timer   // restores if nothing else did by then
}

func clockNanos(id int32) (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(%d): %w", id, err)
	}
	return ts.Nano(), nil
}

// realMinusMono reads CLOCK_REALTIME between two CLOCK_MONOTONIC readings
// and returns their difference against the readings' middle.
func realMinusMono() (int64, error) {
	m1, err := clockNanos(unix.CLOCK_MONOTONIC)
	if err != nil {
		return 0, err
	}
	r, err := clockNanos(unix.CLOCK_REALTIME)
	if err != nil {
		return 0, err
	}
	m2, err := clockNanos(unix.CLOCK_MONOTONIC)
	if err != nil {
		return 0, err
	}
	return r - (m1+m2)/2, nil
}

// setRealMinusMono sets CLOCK_REALTIME so that it is offset ahead of
// CLOCK_MONOTONIC.
func setRealMinusMono(offset int64) error {
	m, err := clockNanos(unix.CLOCK_MONOTONIC)
	if err != nil {
		return err
	}
	ts := unix.NsecToTimespec(m + offset)
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("clock_settime(CLOCK_REALTIME): %w", err)
	}
	return nil
}

// stepClock steps the host's CLOCK_REALTIME by by and returns the step,
// whose restore puts it back. Until then the step restores itself on
// SIGINT, SIGTERM or SIGHUP (and re-raises the signal), and after hold
// in any case; the caller also restores it in its test's Cleanup. A
// failed step leaves nothing stepped.
func stepClock(by, hold time.Duration) (*wallStep, error) {
	off, err := realMinusMono()
	if err != nil {
		return nil, fmt.Errorf("soak: clock step: %w", err)
	}
	s := &wallStep{offset: off, done: make(chan struct{})}
	// The watchers first: a signal between the step and them must not
	// leave the clock stepped.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		defer signal.Stop(sigs)
		select {
		case sig := <-sigs:
			_, _ = s.restore()
			signal.Stop(sigs)
			_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
		case <-s.done:
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timer = time.AfterFunc(hold, func() { _, _ = s.restore() })
	if err := setRealMinusMono(off + int64(by)); err != nil {
		s.stop()
		// Whether the call changed anything is unknown: put the offset
		// read before back all the same.
		if rerr := setRealMinusMono(off); rerr != nil {
			return nil, fmt.Errorf("soak: clock step: %w (and putting it back: %v)", err, rerr)
		}
		return nil, fmt.Errorf("soak: clock step: %w", err)
	}
	s.stepped = true
	return s, nil
}

// stop ends the watchers; s.mu is held.
func (s *wallStep) stop() {
	if s.timer != nil {
		s.timer.Stop()
	}
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

// restore puts CLOCK_REALTIME back to CLOCK_MONOTONIC plus the offset it
// had before the step, and returns how far from that it ended (what the
// restore itself cost, a few microseconds). Restoring twice does nothing.
func (s *wallStep) restore() (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stepped {
		return 0, nil
	}
	var err error
	for range 3 {
		if err = setRealMinusMono(s.offset); err != nil {
			continue
		}
		var off int64
		if off, err = realMinusMono(); err != nil {
			continue
		}
		miss := time.Duration(off - s.offset)
		if miss.Abs() < 50*time.Millisecond {
			s.stepped = false
			s.stop()
			return miss, nil
		}
		err = fmt.Errorf("the clock ended %s from where it should be", miss)
	}
	return 0, fmt.Errorf("soak: restore the clock step: %w", err)
}

// stepClock makes the clock-step fault: the host's wall clock ClockStep
// ahead until the heal. Should the heal never come, the step restores
// itself 30 s after the window, and the test's Cleanup restores it too.
func (r *runner) stepClock(p Planned) (func() error, string, error) {
	s, err := stepClock(ClockStep, p.For+30*time.Second)
	if err != nil {
		return nil, "", err
	}
	r.tb.Cleanup(func() {
		if _, err := s.restore(); err != nil {
			r.tb.Errorf("%v", err)
		}
	})
	r.logf("clock: CLOCK_REALTIME stepped %s ahead for every process on the host", ClockStep)
	return func() error {
		miss, err := s.restore()
		if err != nil {
			return err
		}
		r.logf("clock: CLOCK_REALTIME back where it would have been (%s off)", miss)
		return nil
	}, fmt.Sprintf("the whole host's CLOCK_REALTIME (every node, every process) %s ahead, then back to its offset from CLOCK_MONOTONIC before the step", ClockStep), nil
}

// unstepPings puts the ping stamps of the clock faults' windows back on
// the soak's clock. ping -D stamps each line with the wall clock, which
// the fault moved ClockStep ahead; lines come every half second or so,
// in order, so the window's lines are the ones after a jump forward of
// more than two thirds of ClockStep past a fault's start and before the
// jump back (a window lasts at most 12 s: no gap without a step is that
// long).
func unstepPings(ps []Ping, faults []Fault) []Ping {
	var starts []time.Time
	for _, f := range faults {
		if f.Kind == ClockKind && f.NotMade == "" {
			starts = append(starts, f.Start)
		}
	}
	if len(starts) == 0 {
		return ps
	}
	jump := 2 * ClockStep / 3
	out := make([]Ping, len(ps))
	var prev time.Time
	in := false
	for i, p := range ps {
		out[i] = p
		switch {
		case prev.IsZero():
		case !in && p.Time.Sub(prev) > jump && slices.ContainsFunc(starts, func(s time.Time) bool {
			return !p.Time.Before(s.Add(ClockStep)) && !prev.After(s.Add(ClockStep))
		}):
			in = true
		case in && prev.Sub(p.Time) > jump:
			in = false
		}
		prev = p.Time
		if in {
			out[i].Time = p.Time.Add(-ClockStep)
		}
	}
	return out
}
