package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Go's HTTP client unfolds a field line continued on the next (obs-fold,
// RFC 9112 §5.2) before the edge sees the header: "Expires: Thu, 01 Dec
// 1994\r\n 16:00:00 GMT" reaches it as one valid date. The edge wants
// such a response stale, so it reads the response heads itself as they
// pass on the origin connection: foldConn notes the names of the folded
// fields of each final head, and the request that gets the connection
// (httptrace's GotConn) collects them.

// freshnessFields are the fields freshness is computed from: one of them
// folded makes the response stale on arrival (foldedFreshness).
var freshnessFields = []string{"Expires", "Cache-Control", "Cdn-Cache-Control", "Date", "Age"}

// foldedFreshness reports whether a field freshness depends on came
// folded.
func foldedFreshness(folded []string) bool {
	for _, f := range folded {
		if slices.Contains(freshnessFields, f) {
			return true
		}
	}
	return false
}

// foldConn is an origin connection that watches its response heads for
// obs-fold. Only the head of a response that a request registered for
// (expect) is scanned; bodies pass untouched.
type foldConn struct {
	net.Conn
	scanning atomic.Bool // fast path for body bytes
	mu       sync.Mutex
	scan     headScan
	slot     *foldSlot
}

// NetConn is the TCP connection below (through TLS), for TCP_INFO.
func (c *foldConn) NetConn() net.Conn {
	if nc, ok := c.Conn.(interface{ NetConn() net.Conn }); ok {
		return nc.NetConn()
	}
	return c.Conn
}

// expect makes the next response head on c s's: the transport hands c
// to one request at a time, and only after the previous response was
// read to its end, so the next byte read is the first of s's response.
func (c *foldConn) expect(s *foldSlot) {
	c.mu.Lock()
	c.slot = s
	c.scan = headScan{}
	c.scanning.Store(true)
	c.mu.Unlock()
}

func (c *foldConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.scanning.Load() {
		c.mu.Lock()
		if c.slot != nil && c.scan.feed(p[:n]) {
			c.slot.set(c.scan.folded)
			c.slot = nil
			c.scanning.Store(false)
		}
		c.mu.Unlock()
	}
	return n, err
}

// foldSlot receives the folded field names of one request's final
// response head.
type foldSlot struct {
	mu     sync.Mutex
	folded []string
}

func (s *foldSlot) set(f []string) {
	s.mu.Lock()
	s.folded = f
	s.mu.Unlock()
}

func (s *foldSlot) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.folded
}

// traceFolds registers s with whichever origin connection the request
// made with ctx gets.
func traceFolds(ctx context.Context, s *foldSlot) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if fc, ok := i.Conn.(*foldConn); ok {
			fc.expect(s)
		}
	}})
}

// maxFieldName bounds the field names headScan remembers; longer ones are
// none of freshnessFields.
const maxFieldName = 32

// headScan follows an HTTP/1.1 response head byte by byte, as Go's
// textproto reads it (lines end in LF, optionally after CR; a line that
// starts with SP or HTAB continues the previous field line), and notes
// the fields continued so. 1xx interim heads are skipped: the final head
// follows them.
type headScan struct {
	line   int  // lines completed in this head (0: in the status line)
	col    int  // bytes of the current line so far
	cr     bool // the current line is a lone CR so far
	inName bool // before the colon of a field line
	name   [maxFieldName]byte
	nlen   int // bytes of name; > maxFieldName: too long
	field  [maxFieldName]byte
	flen   int      // the last field line's name, 0 if none or too long
	status [16]byte // the start of the status line
	slen   int
	folded []string
}

// feed scans p; true when the final head ended in p (the rest of p is
// body).
func (s *headScan) feed(p []byte) bool {
	for _, c := range p {
		if c == '\n' {
			if s.col == 0 || (s.col == 1 && s.cr) {
				if s.line > 0 && s.interim() {
					folded := s.folded[:0]
					*s = headScan{folded: folded}
					continue
				}
				return true
			}
			s.endLine()
			continue
		}
		if s.col == 0 {
			s.cr = c == '\r'
			if s.line > 0 {
				if c == ' ' || c == '\t' {
					s.noteFold()
				} else {
					s.inName, s.nlen = true, 0
				}
			}
		} else {
			s.cr = false
		}
		s.col++
		switch {
		case s.line == 0:
			if s.slen < len(s.status) {
				s.status[s.slen] = c
				s.slen++
			}
		case s.inName && c == ':':
			s.inName = false
			if s.nlen <= maxFieldName {
				s.field, s.flen = s.name, s.nlen
			} else {
				s.flen = 0
			}
		case s.inName:
			if s.nlen < maxFieldName {
				s.name[s.nlen] = c
			}
			s.nlen++
		}
	}
	return false
}

func (s *headScan) endLine() {
	if s.inName {
		// A line without a colon: Go's client rejects the response.
		s.inName, s.flen = false, 0
	}
	s.line++
	s.col = 0
}

// noteFold records the field whose line the current one continues.
func (s *headScan) noteFold() {
	if s.flen == 0 {
		return
	}
	name := http.CanonicalHeaderKey(string(s.field[:s.flen]))
	if !slices.Contains(s.folded, name) {
		s.folded = append(s.folded, name)
	}
}

// interim: the head that just ended is a 1xx other than 101 (after which
// the connection is no longer HTTP).
func (s *headScan) interim() bool {
	st := s.status[:s.slen]
	i := 0
	for i < len(st) && st[i] != ' ' {
		i++
	}
	if i+4 > len(st) {
		return false
	}
	code, err := strconv.Atoi(string(st[i+1 : i+4]))
	return err == nil && code >= 100 && code < 200 && code != http.StatusSwitchingProtocols
}

// foldedBody marks a response whose head had folded fields (folds).
type foldedBody struct {
	io.ReadCloser
	folded []string
}

// folds lists the fields the origin folded in resp's head.
func folds(resp *http.Response) []string {
	if fb, ok := resp.Body.(*foldedBody); ok {
		return fb.folded
	}
	return nil
}

// dialers make the transport's connections foldConns: plain ones through
// DialContext, TLS ones through DialTLSContext (the scan must see the
// plaintext). roots, when set, replaces the system's CA pool.
func dialers(connect time.Duration, roots *x509.CertPool, tos int) (plain, secure func(context.Context, string, string) (net.Conn, error)) {
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second, Control: markTOS(tos)}
	plain = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &foldConn{Conn: c}, nil
	}
	secure = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("origin address %s: %w", addr, err)
		}
		tc := tls.Client(c, &tls.Config{ServerName: host, RootCAs: roots, NextProtos: []string{"http/1.1"}})
		hctx := ctx
		if connect > 0 {
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, connect)
			defer cancel()
		}
		if err := tc.HandshakeContext(hctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with origin %s: %w", addr, err)
		}
		return &foldConn{Conn: tc}, nil
	}
	return plain, secure
}
