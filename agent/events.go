package agent

import (
	"sync"

	"github.com/intercloud/intercloud/store"
)

// event is what the watchers send the loop.
type event interface{ isEvent() }

type (
	// pointerEvent: the store points at this revision.
	pointerEvent store.Pointer
	// storeEvent: a ping of the store answered (err nil) or not.
	storeEvent struct{ err error }
	// pingEvent: Alive asks; the loop closes done.
	pingEvent struct{ done chan struct{} }
)

func (pointerEvent) isEvent() {}
func (storeEvent) isEvent()   {}
func (pingEvent) isEvent()    {}

// latest is the newest of a stream of whole sets (the live nodes, the
// health verdicts, the invalidations): the watcher replaces it without
// waiting and the loop takes it when it gets to it. Sets that were
// replaced before the loop looked are never looked at: each is whole, so
// the newest is all that counts, and a fleet's status changes cannot queue
// up in front of a revision.
type latest[T any] struct {
	mu    sync.Mutex
	v     T
	fresh bool
	ready chan struct{}
}

func newLatest[T any]() *latest[T] { return &latest[T]{ready: make(chan struct{}, 1)} }

func (l *latest[T]) put(v T) {
	l.mu.Lock()
	l.v, l.fresh = v, true
	l.mu.Unlock()
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

// take returns the newest set, false when it was taken already.
func (l *latest[T]) take() (T, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, fresh := l.v, l.fresh
	l.fresh = false
	return v, fresh
}
