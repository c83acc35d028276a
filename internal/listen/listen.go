// Package listen binds an HTTP listener and serves it with the right
// server: h1's fast path for plaintext HTTP/1.1, net/http for TLS (HTTP/2
// by ALPN) and for plaintext when the operator switches h1 off
// (INTERCLOUD_HTTP=net/http). Binding and serving are two steps, so that
// a role binds while it prepares a revision and serves once it commits.
package listen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/intercloud/intercloud/internal/h1"
)

// Switch is the environment variable that turns h1 off: with
// INTERCLOUD_HTTP=net/http every plaintext listener is served by net/http,
// for an operator who suspects the fast path.
const Switch = "INTERCLOUD_HTTP"

// Config is one listener.
type Config struct {
	Addr    string
	Handler http.Handler
	// TLS, when set, terminates TLS on the listener (served by net/http).
	TLS *tls.Config
	// NetHTTP serves a plaintext listener with net/http too (admin
	// endpoints, where the fast path buys nothing).
	NetHTTP           bool
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	ConnContext       func(ctx context.Context, c net.Conn) context.Context
	ErrorLog          *log.Logger
	// OnError is called when the listener stops on its own (not by Stop or
	// Shutdown).
	OnError func(error)
}

type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// Listener is a bound address and the server that will serve it.
type Listener struct {
	cfg      Config
	ln       net.Listener
	tcp      *net.TCPListener // ln before TLS, for its socket (socket.go)
	srv      server
	served   atomic.Bool
	stopping atomic.Bool
}

// NetHTTP reports whether plaintext listeners use net/http (the switch).
func NetHTTP() bool { return os.Getenv(Switch) == "net/http" }

// Bind binds cfg.Addr; nothing is served until Serve.
func Bind(cfg Config) (*Listener, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	l := &Listener{cfg: cfg, ln: ln}
	l.tcp, _ = ln.(*net.TCPListener)
	if cfg.TLS == nil && !cfg.NetHTTP && !NetHTTP() {
		l.srv = &h1.Server{Handler: cfg.Handler, ReadHeaderTimeout: cfg.ReadHeaderTimeout, IdleTimeout: cfg.IdleTimeout,
			MaxHeaderBytes: cfg.MaxHeaderBytes, ConnContext: cfg.ConnContext, ErrorLog: cfg.ErrorLog}
		return l, nil
	}
	hs := &http.Server{Handler: h1.CloseAfterTransferEncoding(cfg.Handler), ReadHeaderTimeout: cfg.ReadHeaderTimeout, IdleTimeout: cfg.IdleTimeout,
		MaxHeaderBytes: cfg.MaxHeaderBytes, ConnContext: cfg.ConnContext, ErrorLog: cfg.ErrorLog, TLSConfig: cfg.TLS}
	l.srv = hs
	if cfg.TLS != nil {
		l.ln = tls.NewListener(ln, cfg.TLS)
	}
	return l, nil
}

// Addr is the bound address (the real port when Addr asked for port 0).
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Configured is the address as configured.
func (l *Listener) Configured() string { return l.cfg.Addr }

// TLS says whether the listener terminates TLS.
func (l *Listener) TLS() bool { return l.cfg.TLS != nil }

// Serve starts serving in the background; it is called once.
func (l *Listener) Serve() {
	l.served.Store(true)
	go func() {
		err := l.srv.Serve(l.ln)
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !l.stopping.Load() && l.cfg.OnError != nil {
			l.cfg.OnError(fmt.Errorf("listener %s stopped: %w", l.cfg.Addr, err))
		}
	}()
}

// Stop frees the port before it returns and lets the connections in
// flight finish in the background, for up to grace.
func (l *Listener) Stop(grace time.Duration) {
	l.stopping.Store(true)
	l.ln.Close()
	if !l.served.Load() {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if l.srv.Shutdown(ctx) != nil {
			l.srv.Close()
		}
	}()
}

// Shutdown frees the port and waits for the connections in flight, or
// for ctx (then closes them).
func (l *Listener) Shutdown(ctx context.Context) error {
	l.stopping.Store(true)
	l.ln.Close()
	if !l.served.Load() {
		return nil
	}
	if err := l.srv.Shutdown(ctx); err != nil {
		l.srv.Close()
		return fmt.Errorf("shutdown %s: %w", l.cfg.Addr, err)
	}
	return nil
}
