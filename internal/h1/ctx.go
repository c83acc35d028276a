package h1

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// requestContext is the context of the request a connection is serving.
// Like net/http's, it is cancelled when the client goes away and when the
// handler returns; unlike net/http's, it watches the connection only once
// someone asks for Done — a cache hit never does, an origin round trip
// does — so the hot path pays for no background read.
//
// One lives in each connection and is reset between requests.
type requestContext struct {
	context.Context // the connection's context: values, no cancellation
	c               *conn

	mu       sync.Mutex
	active   bool // a request is being served (the watcher may read)
	done     chan struct{}
	err      error
	watching bool
	exited   chan struct{} // closed when the watcher's read returned
}

// begin readies the context for the next request.
func (rc *requestContext) begin() {
	rc.mu.Lock()
	rc.active, rc.done, rc.err, rc.watching, rc.exited = true, nil, nil, false, nil
	rc.mu.Unlock()
}

func (rc *requestContext) Done() <-chan struct{} {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.done == nil {
		rc.done = make(chan struct{})
		if rc.err != nil {
			close(rc.done)
		} else if rc.active && !rc.watching {
			rc.watching = true
			rc.exited = make(chan struct{})
			go rc.watch()
		}
	}
	return rc.done
}

func (rc *requestContext) Err() error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.err
}

func (rc *requestContext) cancel(err error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.err != nil {
		return
	}
	rc.err = err
	if rc.done != nil {
		close(rc.done)
	}
}

// watch reads one byte while the handler runs: an error means the client
// is gone; a byte is the start of a pipelined request, kept for the read
// loop. Only bytes past what the read buffer holds are read here.
func (rc *requestContext) watch() {
	defer close(rc.exited)
	var b [1]byte
	n, err := rc.c.rwc.Read(b[:])
	if n == 1 {
		rc.c.src.extra = append(rc.c.src.extra, b[0])
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return // finish stopped us
	}
	rc.cancel(context.Canceled)
}

// finish cancels the request's context, as net/http does when the
// handler returns, and stops the watcher before the read loop reads on.
// A context kept past its request stays cancelled (until the next request
// on the connection reuses it).
func (rc *requestContext) finish() {
	rc.cancel(context.Canceled)
	rc.mu.Lock()
	rc.active = false
	watching, exited := rc.watching, rc.exited
	rc.mu.Unlock()
	if watching {
		rc.c.rwc.SetReadDeadline(aLongTimeAgo)
		<-exited
		rc.c.setReadDeadline(time.Time{})
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// connSource is what the read buffer fills from: bytes already read off
// the connection (by the watcher) come first, then the connection.
type connSource struct {
	net.Conn
	extra []byte
}

func (s *connSource) Read(p []byte) (int, error) {
	if len(s.extra) > 0 {
		n := copy(p, s.extra)
		s.extra = s.extra[n:]
		return n, nil
	}
	return s.Conn.Read(p)
}
