package sdnotify

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listen opens a unixgram socket at name (a path, or "@abstract") the way
// systemd does, and returns it with the value NOTIFY_SOCKET would hold.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	for _, tc := range []struct{ name, socket string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", "@intercloud-sdnotify-test-" + t.Name()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := listen(t, tc.socket)
			t.Setenv("NOTIFY_SOCKET", tc.socket)
			n := FromEnv()
			if err := n.Notify(Ready, Status("serving")); err != nil {
				t.Fatal(err)
			}
			if got := read(t, c); got != "READY=1\nSTATUS=serving\n" {
				t.Errorf("datagram %q", got)
			}
			if err := n.Notify(ReloadingNow()...); err != nil {
				t.Fatal(err)
			}
			got := read(t, c)
			if !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") || strings.HasSuffix(got, "MONOTONIC_USEC=0\n") {
				t.Errorf("reload datagram %q lacks a monotonic time", got)
			}
		})
	}
}

func TestNoSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n != nil {
		t.Fatalf("notifier without NOTIFY_SOCKET: %+v", n)
	}
	if err := n.Notify(Ready); err != nil {
		t.Errorf("nil notifier: %v", err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	if err := FromEnv().Notify(Ready); err == nil {
		t.Error("no error for a socket nobody listens on")
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"", "", 0, false},
		{"30000000", "", 15 * time.Second, false},
		{"30000000", "1", 0, false}, // another process's watchdog
		{"abc", "", 0, true},
		{"-5", "", 0, true},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		got, err := WatchdogInterval()
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, %v; want %v, error %v", tc.usec, tc.pid, got, err, tc.want, tc.err)
		}
	}
}

// The watchdog is fed only while alive answers.
func TestWatch(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	c := listen(t, sock)
	t.Setenv("NOTIFY_SOCKET", sock)
	ctx, cancel := context.WithCancel(context.Background())
	alive := make(chan error)
	done := make(chan struct{})
	go func() {
		defer close(done)
		FromEnv().Watch(ctx, time.Millisecond, func(actx context.Context) error {
			select {
			case err := <-alive:
				return err
			case <-actx.Done():
				return actx.Err()
			}
		})
	}()
	alive <- errors.New("loop stuck")
	alive <- nil
	if got := read(t, c); got != "WATCHDOG=1\n" {
		t.Errorf("datagram %q", got)
	}
	// Nothing was sent for the failed round: the one datagram read was
	// the only one queued.
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := c.Read(make([]byte, 64)); err == nil {
		t.Errorf("a second datagram (%d bytes) for one live round", n)
	}
	cancel()
	<-done
}
