// Package h1 serves plaintext HTTP/1.1 for an http.Handler with less work
// per request than net/http: one goroutine and one pair of buffers per
// connection, no background read while the handler runs, and the request
// parsed straight out of the read buffer.
//
// It takes only the common case, a request without a body (GET, HEAD and
// the like), and answers it itself. Anything else — a body, Expect,
// Upgrade, an absolute or asterisk target, a header block larger than its
// buffer, anything it does not parse cleanly — and the connection is
// handed, with the bytes already read, to an ordinary net/http server for
// the rest of its life. So every odd corner of HTTP/1.1 keeps net/http's
// behaviour, and the hot path stays short.
package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Server is a drop-in for an *http.Server serving plaintext HTTP/1.x.
type Server struct {
	Handler           http.Handler
	ReadHeaderTimeout time.Duration // default 10 s
	IdleTimeout       time.Duration // default 120 s
	MaxHeaderBytes    int           // for connections handed to net/http
	// ConnContext, when set, derives each connection's base context, as
	// http.Server.ConnContext does.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	ErrorLog    *log.Logger

	mu       sync.Mutex
	lns      map[net.Listener]struct{}
	conns    map[*conn]struct{}
	fallback *http.Server
	handoff  *chanListener
	closing  atomic.Bool
	wg       sync.WaitGroup
}

// ErrServerClosed is what Serve returns after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

func (s *Server) init() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fallback != nil {
		return
	}
	s.lns = map[net.Listener]struct{}{}
	s.conns = map[*conn]struct{}{}
	s.handoff = newChanListener()
	s.fallback = &http.Server{
		Handler:           CloseAfterTransferEncoding(s.Handler),
		ReadHeaderTimeout: s.readHeaderTimeout(),
		IdleTimeout:       s.idleTimeout(),
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ErrorLog:          s.ErrorLog,
		ConnContext:       s.ConnContext,
	}
	go s.fallback.Serve(s.handoff) //nolint:errcheck // ends with Shutdown
}

func (s *Server) readHeaderTimeout() time.Duration {
	if s.ReadHeaderTimeout > 0 {
		return s.ReadHeaderTimeout
	}
	return 10 * time.Second
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return 120 * time.Second
}

// Serve accepts connections on ln until Shutdown or Close, and always
// returns a non-nil error (ErrServerClosed after those).
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	if s.closing.Load() {
		return ErrServerClosed
	}
	s.mu.Lock()
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	base := context.Background()
	var delay time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if retryable(err) {
				// Out of descriptors and the like: back off as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logf("h1: accept error: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("h1: accept on %s: %w", ln.Addr(), err)
		}
		delay = 0
		c := s.newConn(base, rwc)
		if c == nil {
			rwc.Close()
			continue
		}
		go c.serve()
	}
}

// retryable: accept errors net/http also retries (EMFILE and friends
// still report Temporary).
func retryable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

func (s *Server) newConn(base context.Context, rwc net.Conn) *conn {
	ctx := context.WithValue(base, http.LocalAddrContextKey, rwc.LocalAddr())
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, rwc)
		if ctx == nil {
			panic("h1: ConnContext returned nil")
		}
	}
	c := &conn{srv: s, rwc: rwc, ctx: ctx, remoteAddr: rwc.RemoteAddr().String()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return nil
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return c
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown stops accepting, closes idle connections, and waits for the
// active ones to finish their request, or for ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.closing.Store(true)
	s.mu.Lock()
	for ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	fallbackDone := make(chan error, 1)
	go func() { fallbackDone <- s.fallback.Shutdown(ctx) }()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeIdle()
		select {
		case <-done:
			return <-fallbackDone
		case <-ctx.Done():
			<-fallbackDone
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes every listener and connection at once.
func (s *Server) Close() error {
	s.init()
	s.closing.Store(true)
	s.mu.Lock()
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.rwc.Close()
	}
	s.mu.Unlock()
	return s.fallback.Close()
}

func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.rwc.Close()
		}
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

const (
	stateIdle int32 = iota
	stateActive
	stateClosed
)

// bufSize bounds the header block the fast path parses; larger ones go to
// net/http, which allows up to MaxHeaderBytes.
const bufSize = 4096

var (
	readerPool   = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writeBufPool = sync.Pool{New: func() any { b := make([]byte, 0, bufSize); return &b }}
)

type conn struct {
	srv        *Server
	rwc        net.Conn
	ctx        context.Context
	remoteAddr string
	template   *http.Request // RemoteAddr and rctx
	// readDeadline is the read deadline in force: the idle timeout, or
	// the header timeout while a header block is incomplete.
	readDeadline time.Time
	state        atomic.Int32
	src          connSource // what br reads from
	br           *bufio.Reader
	rctx         requestContext
	bw           writer
	res          response
}

func (c *conn) serve() {
	handedOff := false
	defer func() {
		if err := recover(); err != nil && err != http.ErrAbortHandler {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			c.srv.logf("h1: panic serving %s: %v\n%s", c.remoteAddr, err, buf)
		}
		if !handedOff {
			c.rwc.Close()
		}
		c.release()
		c.srv.forget(c)
	}()
	c.br = readerPool.Get().(*bufio.Reader)
	c.src.Conn = c.rwc
	c.br.Reset(&c.src)
	c.bw.reset(c.rwc, *writeBufPool.Get().(*[]byte))
	c.res.header = make(http.Header, 16)
	c.rctx.Context, c.rctx.c = c.ctx, c
	c.template = (&http.Request{RemoteAddr: c.remoteAddr}).WithContext(&c.rctx)
	idle := c.srv.idleTimeout()
	for {
		if c.br.Buffered() == 0 {
			// The idle deadline moves at most once a second: each move is
			// a runtime timer update, and the timeout is minutes long.
			if now := time.Now(); c.readDeadline.IsZero() || now.Add(idle).Sub(c.readDeadline) > time.Second {
				c.setReadDeadline(now.Add(idle))
			}
			if _, err := c.br.Peek(1); err != nil {
				return
			}
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return // Shutdown closed it while idle
		}
		req, n, err := c.readRequest()
		if err != nil {
			switch {
			case errors.Is(err, errHandOff):
				handedOff = c.handOff()
			case errors.Is(err, errSmuggling):
				c.rwc.SetWriteDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c.rwc, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 35\r\n\r\n400 Bad Request: ambiguous framing\n")
			}
			return
		}
		c.br.Discard(n)
		keep := c.serveOne(req)
		if !keep || c.srv.closing.Load() {
			return
		}
		if !c.state.CompareAndSwap(stateActive, stateIdle) {
			return
		}
	}
}

func (c *conn) setReadDeadline(t time.Time) {
	c.rwc.SetReadDeadline(t)
	c.readDeadline = t
}

// handOff gives the connection, with what was read of it, to net/http.
func (c *conn) handOff() bool {
	buffered, _ := c.br.Peek(c.br.Buffered())
	prefix := append(append([]byte(nil), buffered...), c.src.extra...)
	pc := &prefixConn{connSource{Conn: c.rwc, extra: prefix}}
	c.setReadDeadline(time.Time{})
	return c.srv.handoff.deliver(pc)
}

func (c *conn) release() {
	if c.br != nil {
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.br = nil
	}
	if buf := c.bw.buf; buf != nil {
		c.bw.reset(nil, nil)
		writeBufPool.Put(&buf)
	}
}

// serveOne runs the handler for one request and finishes the response;
// it reports whether the connection can carry another request.
func (c *conn) serveOne(req *http.Request) bool {
	w := &c.res
	w.reset(c, req)
	c.rctx.begin()
	c.srv.Handler.ServeHTTP(w, req)
	c.rctx.finish()
	if err := w.finish(); err != nil {
		return false
	}
	if c.br.Buffered() == 0 || w.closeAfter {
		// Nothing pipelined behind this request (or nothing more will be
		// answered): send the reply now.
		if err := c.bw.Flush(); err != nil {
			return false
		}
	}
	return !w.closeAfter
}

// unsafeBytes views s as bytes for a write that only copies from it.
func unsafeBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// CloseAfterTransferEncoding closes an HTTP/1 connection after answering a
// request that came with Transfer-Encoding: net/http reads such a request
// by its chunks alone even beside a Content-Length, and keeps the
// connection, where RFC 9112 §6.1 has the server close it, so that what
// an intermediary read by the length cannot become a request of its own.
func CloseAfterTransferEncoding(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}
