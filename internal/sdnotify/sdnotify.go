// Package sdnotify speaks systemd's notify protocol (sd_notify(3)): one
// datagram of newline-separated KEY=VALUE assignments to the unix socket
// named by $NOTIFY_SOCKET. Outside a Type=notify unit the variable is unset
// and every call does nothing, so daemons call it unconditionally.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The states a daemon reports (sd_notify(3)).
const (
	Ready     = "READY=1"
	Stopping  = "STOPPING=1"
	Reloading = "RELOADING=1"
	Watchdog  = "WATCHDOG=1"
)

// Notifier sends to one socket; a nil *Notifier sends nothing.
type Notifier struct {
	addr *net.UnixAddr
}

// FromEnv returns the notifier of $NOTIFY_SOCKET, or nil when the daemon
// does not run under a unit that listens. The variable is left set: a
// child we start is no service of its own, and systemd ignores datagrams
// from processes outside the unit's main PID unless NotifyAccess says so.
func FromEnv() *Notifier {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	// "@name" is an abstract socket: Go spells it with a leading "@" too,
	// and turns it into the leading NUL byte the kernel wants.
	return &Notifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}
}

// Notify sends the assignments as one datagram.
func (n *Notifier) Notify(state ...string) error {
	if n == nil || len(state) == 0 {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %s: %w", n.addr.Name, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(state, "\n") + "\n")); err != nil {
		return fmt.Errorf("sdnotify: %s: %w", n.addr.Name, err)
	}
	return nil
}

// ReloadingNow is RELOADING=1 with the MONOTONIC_USEC (CLOCK_MONOTONIC
// now) that systemd 253+ wants from a Type=notify-reload unit, so that it
// can tell this reload from an older one; the READY=1 sent once the reload
// is done ends it.
func ReloadingNow() []string {
	return []string{Reloading, "MONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10)}
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}

// Status is a STATUS= line systemctl status shows.
func Status(s string) string {
	return "STATUS=" + strings.ReplaceAll(s, "\n", " ")
}

// WatchdogInterval is how often to send WATCHDOG=1: half of
// $WATCHDOG_USEC, as sd_watchdog_enabled(3) advises. It is 0 when the unit
// has no watchdog or the variable names another process ($WATCHDOG_PID).
func WatchdogInterval() (time.Duration, error) {
	v := os.Getenv("WATCHDOG_USEC")
	if v == "" {
		return 0, nil
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0, nil
	}
	us, err := strconv.ParseInt(v, 10, 64)
	if err != nil || us <= 0 {
		return 0, errors.New("sdnotify: WATCHDOG_USEC=" + v + " is not a positive number of microseconds")
	}
	return time.Duration(us) * time.Microsecond / 2, nil
}

// Watch sends WATCHDOG=1 every interval for as long as alive answers nil,
// until ctx ends. alive should prove that the daemon's work goes on (its
// main loop took an event), not merely that this goroutine runs: when it
// fails or hangs past the interval, no WATCHDOG=1 goes out and systemd
// restarts the unit once WATCHDOG_USEC has passed.
func (n *Notifier) Watch(ctx context.Context, interval time.Duration, alive func(context.Context) error) {
	if n == nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, interval)
		err := alive(actx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			_ = n.Notify(Watchdog)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
