package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/intercloud/intercloud/internal/sdnotify"
)

// notifier tells systemd (Type=notify units, deploy/systemd) about one
// daemon's life: READY=1 once it really serves, RELOADING=1 and READY=1
// around a SIGHUP reload, STOPPING=1 when it starts to stop, and WATCHDOG=1
// while its own work goes on. Without $NOTIFY_SOCKET it does nothing.
type notifier struct {
	n    *sdnotify.Notifier
	log  *slog.Logger
	warn sync.Once
}

func newNotifier(log *slog.Logger) *notifier {
	return &notifier{n: sdnotify.FromEnv(), log: log}
}

func (d *notifier) send(state ...string) {
	if err := d.n.Notify(state...); err != nil {
		d.warn.Do(func() { d.log.Warn("cannot tell systemd our state", "err", err) })
	}
}

// ready says the daemon serves; status is what systemctl status shows.
func (d *notifier) ready(status string) { d.send(sdnotify.Ready, sdnotify.Status(status)) }

// reloading and reloaded bracket a SIGHUP reload.
func (d *notifier) reloading() { d.send(sdnotify.ReloadingNow()...) }
func (d *notifier) reloaded(status string) {
	d.send(sdnotify.Ready, sdnotify.Status(status))
}

// run sends STOPPING=1 when ctx ends and, when the unit has a watchdog,
// WATCHDOG=1 every half period while alive answers. It returns at once.
func (d *notifier) run(ctx context.Context, alive func(context.Context) error) {
	if d.n == nil {
		return
	}
	go func() {
		<-ctx.Done()
		d.send(sdnotify.Stopping, sdnotify.Status("stopping"))
	}()
	every, err := sdnotify.WatchdogInterval()
	if err != nil {
		d.log.Warn("watchdog off", "err", err)
		return
	}
	if every > 0 && alive != nil {
		go d.n.Watch(ctx, every, alive)
	}
}

// httpAlive is a liveness check that asks url (the daemon's own /healthz):
// the listener accepts and the server's goroutines answer.
func httpAlive(url string) func(context.Context) error {
	client := &http.Client{Timeout: 5 * time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}
