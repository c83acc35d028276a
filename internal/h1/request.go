package h1

import (
	"bytes"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"time"
	"unsafe"

	"golang.org/x/net/http/httpguts"
)

// errHandOff: the request is not one the fast path takes; net/http gets
// the connection.
var errHandOff = errors.New("h1: hand off to net/http")

// errSmuggling: the header block has a shape that lets a request hide
// another (RFC 9112 §6.1, §5.2, §11.2): Content-Length beside
// Transfer-Encoding, or an obsolete folded line. It is answered 400 and
// the connection closed, as nginx does, never handed on.
var errSmuggling = errors.New("h1: ambiguous message framing")

// readRequest parses the next request out of the read buffer without
// consuming it, and returns the request and the length of its header
// block. Requests outside the fast path's subset return errHandOff.
func (c *conn) readRequest() (*http.Request, int, error) {
	slow := false
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		end := headerEnd(buf)
		if end > 0 {
			// The template carries the connection's context: copying it
			// costs one allocation where WithContext would cost two.
			req := new(http.Request)
			*req = *c.template
			if err := parseRequest(buf[:end], req); err != nil {
				return nil, 0, err
			}
			if slow {
				c.setReadDeadline(time.Now().Add(c.srv.idleTimeout()))
			}
			return req, end, nil
		}
		if len(buf) >= c.br.Size() {
			return nil, 0, errHandOff // header block larger than the buffer
		}
		if !slow {
			// The header block came in pieces: the rest has the header
			// timeout to arrive (slowloris), not the idle one.
			slow = true
			c.setReadDeadline(time.Now().Add(c.srv.readHeaderTimeout()))
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			// Timeout or EOF mid-header: net/http too closes silently.
			return nil, 0, err
		}
	}
}

// headerEnd returns the length of the header block including its final
// empty line, or 0 when buf does not hold a whole one yet.
func headerEnd(buf []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return 0
		}
		line := buf[i : i+j]
		i += j + 1
		if len(line) == 0 || len(line) == 1 && line[0] == '\r' {
			return i
		}
	}
}

// parseRequest parses a complete header block. It accepts what net/http
// would accept and would treat as a bodiless request; anything else
// returns errHandOff, so net/http answers it (400, 431, 100-continue…).
func parseRequest(block []byte, req *http.Request) error {
	// One string for the whole block: the target and every header value
	// are substrings of it, one allocation instead of one each.
	str := string(block)
	sub := func(b []byte) string {
		if len(b) == 0 {
			return ""
		}
		off := int(uintptr(unsafe.Pointer(&b[0])) - uintptr(unsafe.Pointer(&block[0])))
		return str[off : off+len(b)]
	}
	line, rest := nextLine(block)
	method, target, proto, ok := splitRequestLine(line)
	if !ok {
		return errHandOff
	}
	req.Method = internMethod(method)
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	req.Body = http.NoBody
	if proto[len(proto)-1] == '0' {
		req.Proto, req.ProtoMinor = "HTTP/1.0", 0
	}
	if req.Method == "CONNECT" || len(target) == 0 || target[0] != '/' {
		return errHandOff
	}
	req.RequestURI = sub(target)
	u, err := url.ParseRequestURI(req.RequestURI)
	if err != nil {
		return errHandOff
	}
	req.URL = u
	lines := bytes.Count(rest, []byte{'\n'})
	h := make(http.Header, lines)
	// The value slices share one backing array, as in net/textproto.
	vals := make([]string, lines)
	var handOff, length, chunked bool
	for {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errSmuggling // obs-fold
		}
		k, v, ok := splitHeader(line)
		if !ok {
			handOff = true
			continue
		}
		key := canonicalKey(k)
		switch key {
		case "Content-Length":
			length = true
			if string(v) != "0" {
				handOff = true
			}
		case "Transfer-Encoding":
			chunked, handOff = true, true
		case "Expect", "Upgrade", "Trailer", "Te":
			handOff = true
		}
		if vv, ok := h[key]; ok || len(vals) == 0 {
			h[key] = append(vv, sub(v))
		} else {
			vals[0] = sub(v)
			h[key] = vals[:1:1]
			vals = vals[1:]
		}
	}
	if length && chunked {
		return errSmuggling
	}
	if handOff {
		return errHandOff
	}
	hosts := h["Host"]
	switch {
	case len(hosts) > 1, len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]):
		return errHandOff
	case len(hosts) == 0 && req.ProtoMinor == 1:
		return errHandOff
	case len(hosts) == 1:
		req.Host = hosts[0]
	}
	delete(h, "Host")
	if hp, ok := h["Pragma"]; ok && hp[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	req.Header = h
	conn := h["Connection"]
	hasClose := httpguts.HeaderValuesContainsToken(conn, "close")
	if req.ProtoMinor == 0 {
		req.Close = hasClose || !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	} else {
		req.Close = hasClose
	}
	return nil
}

func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

func splitRequestLine(line []byte) (method, target, proto []byte, ok bool) {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return nil, nil, nil, false
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 < 0 {
		return nil, nil, nil, false
	}
	method, target, proto = line[:sp1], line[sp1+1:sp1+1+sp2], line[sp1+2+sp2:]
	if string(proto) != "HTTP/1.1" && string(proto) != "HTTP/1.0" {
		return nil, nil, nil, false
	}
	for _, b := range method {
		if !httpguts.IsTokenRune(rune(b)) {
			return nil, nil, nil, false
		}
	}
	for _, b := range target {
		if b <= ' ' || b == 0x7f {
			return nil, nil, nil, false
		}
	}
	return method, target, proto, true
}

// splitHeader splits "Name: value" with the checks net/http makes: a
// token name right before the colon, a value without control characters.
// Obsolete line folding is left to net/http.
func splitHeader(line []byte) (k, v []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, false
	}
	k = line[:colon]
	for _, b := range k {
		if !httpguts.IsTokenRune(rune(b)) {
			return nil, nil, false
		}
	}
	v = bytes.Trim(line[colon+1:], " \t")
	for _, b := range v {
		if b < ' ' && b != '\t' || b == 0x7f {
			return nil, nil, false
		}
	}
	return k, v, true
}

// commonKeys maps the usual spellings of frequent request headers to their
// canonical form without allocating.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language",
		"Authorization", "Cache-Control", "Connection", "Content-Length",
		"Content-Type", "Cookie", "Forwarded", "Host", "If-Match",
		"If-Modified-Since", "If-None-Match", "If-Range",
		"If-Unmodified-Since", "Origin", "Pragma", "Range", "Referer",
		"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Te",
		"Transfer-Encoding", "Upgrade", "Upgrade-Insecure-Requests",
		"User-Agent", "Via", "X-Forwarded-For", "X-Forwarded-Proto",
		"X-Requested-With", "Expect", "Trailer", "Dnt", "Priority",
	} {
		m[k] = k
		m[lower(k)] = k
	}
	return m
}()

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func canonicalKey(k []byte) string {
	if c, ok := commonKeys[string(k)]; ok {
		return c
	}
	return textproto.CanonicalMIMEHeaderKey(string(k))
}

func internMethod(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "OPTIONS":
		return "OPTIONS"
	case "DELETE":
		return "DELETE"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	}
	return string(m)
}
