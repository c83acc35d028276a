package origin

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The active version is read from the current pointer. Reading it on every
// request costs a readlinkat, which on virtual machines is a good part of a
// small response's budget; so the server keeps it in memory and an inotify
// watch on the root re-reads it whenever the pointer is renamed, created
// or removed. A re-read every second backs the watch up (an overflowed
// event queue, a filesystem without inotify). Requests see an activation
// as soon as the watch delivers it, in order: never an older version after
// a newer one.

type activeState struct {
	version string
	err     error
}

// activeWatcher owns the inotify descriptor and the cached pointer.
type activeWatcher struct {
	s    *Server
	cur  atomic.Pointer[activeState]
	file *os.File // inotify, in the runtime poller so Close interrupts Read
	wg   sync.WaitGroup
	stop chan struct{}
}

func (s *Server) startActiveWatch() {
	a := &activeWatcher{s: s, stop: make(chan struct{})}
	a.refresh()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err == nil {
		_, err = unix.InotifyAddWatch(fd, s.cfg.Root,
			unix.IN_MOVED_TO|unix.IN_CREATE|unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF)
		if err != nil {
			unix.Close(fd)
		} else {
			a.file = os.NewFile(uintptr(fd), "inotify")
		}
	}
	if err != nil {
		s.log.Warn("no inotify on the root; the current pointer is re-read every second", "err", err)
	}
	s.active = a
	a.wg.Add(1)
	go a.run()
	// The initial read happened before the watch existed; read again so
	// that an activation in between is not missed.
	a.refresh()
}

func (a *activeWatcher) refresh() {
	v, err := a.s.readActive()
	a.cur.Store(&activeState{version: v, err: err})
}

func (a *activeWatcher) get() (string, error) {
	st := a.cur.Load()
	return st.version, st.err
}

func (a *activeWatcher) run() {
	defer a.wg.Done()
	events := make(chan struct{}, 1)
	if a.file != nil {
		a.wg.Add(1)
		go a.readEvents(events)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-events:
		case <-tick.C:
		}
		a.refresh()
	}
}

// readEvents signals on any event about the pointer (or an overflow). The
// names are not parsed beyond that: a re-read is cheap.
func (a *activeWatcher) readEvents(events chan<- struct{}) {
	defer a.wg.Done()
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := a.file.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				a.s.log.Warn("inotify read", "err", err)
			}
			return
		}
		if n > 0 {
			// Refresh here, on this goroutine, so that the new pointer is
			// in place as soon as possible; the channel only wakes run for
			// the bookkeeping.
			a.refresh()
			select {
			case events <- struct{}{}:
			default:
			}
		}
	}
}

func (a *activeWatcher) close() {
	close(a.stop)
	if a.file != nil {
		a.file.Close()
	}
	a.wg.Wait()
}
