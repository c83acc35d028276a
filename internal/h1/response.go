package h1

import (
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// pendingMax is how much body the writer holds back while the handler
// may still finish, so a small response gets a Content-Length instead of
// chunks (net/http holds 2 KiB; a 4 KiB object fits here).
const pendingMax = 8 << 10

// sniffLen is what http.DetectContentType looks at.
const sniffLen = 512

// response is the http.ResponseWriter of the fast path. One lives in each
// connection and is reset per request; it follows net/http's framing
// rules (Content-Length when known or computable, chunked otherwise,
// close for HTTP/1.0 without a length).
type response struct {
	c           *conn
	req         *http.Request
	header      http.Header
	status      int
	wroteHeader bool // the final status is set
	sentHeader  bool // the header block is in the write buffer
	bodyAllowed bool
	head        bool
	http10      bool
	declared    int64 // the handler's Content-Length, or -1
	written     int64
	chunked     bool
	closeAfter  bool
	pending     []byte
	keys        []string
}

func (w *response) reset(c *conn, req *http.Request) {
	clear(w.header)
	*w = response{
		c: c, req: req, header: w.header, declared: -1,
		head:       req.Method == http.MethodHead,
		http10:     req.ProtoMinor == 0,
		closeAfter: req.Close,
		pending:    w.pending[:0],
		keys:       w.keys[:0],
	}
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		w.c.srv.logf("h1: superfluous response.WriteHeader call (status %d after %d)", code, w.status)
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// Informational (103 Early Hints): out at once, the final status follows.
		w.writeStatusLine(code)
		w.writeHeaderLines(nil)
		w.c.bw.WriteString("\r\n")
		w.c.bw.Flush()
		return
	}
	w.wroteHeader = true
	w.status = code
	w.bodyAllowed = code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
	// Canonical names are read straight from the map: Get would
	// canonicalise them again on every response.
	if cl := first(w.header["Content-Length"]); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			w.declared = v
		} else {
			w.c.srv.logf("h1: invalid Content-Length of %q", cl)
			w.header.Del("Content-Length")
		}
	}
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed {
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.sentHeader {
		if w.declared < 0 && len(w.pending)+len(p) <= pendingMax {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		first := p
		if len(w.pending) > 0 {
			first = append(w.pending, p[:min(len(p), sniffLen)]...)
		}
		w.sendHeader(first, w.declared < 0)
		if err := w.writeBody(w.pending); err != nil {
			return 0, err
		}
		w.pending = w.pending[:0]
	}
	if err := w.writeBody(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *response) WriteString(s string) (int, error) {
	// The conversion does not escape: Write only copies from p.
	return w.Write(unsafeBytes(s))
}

func (w *response) writeBody(p []byte) error {
	if w.head || len(p) == 0 {
		return nil
	}
	bw := &w.c.bw
	if w.chunked {
		var hex [16]byte
		bw.Write(strconv.AppendInt(hex[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, err := bw.WriteString("\r\n")
		return err
	}
	_, err := bw.Write(p)
	return err
}

// Flush sends what is written so far; without a declared length the rest
// of the body goes out chunked.
func (w *response) Flush() {
	w.FlushError() //nolint:errcheck // http.Flusher has no error
}

// FlushError is what http.ResponseController.Flush calls.
func (w *response) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sentHeader {
		w.sendHeader(w.pending, w.declared < 0)
		if err := w.writeBody(w.pending); err != nil {
			return err
		}
		w.pending = w.pending[:0]
	}
	return w.c.bw.Flush()
}

// ReadFrom lets a declared-length body go out with sendfile/splice.
func (w *response) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	rf, ok := w.c.rwc.(io.ReaderFrom)
	if !ok || w.chunked || w.declared < 0 || w.head || !w.bodyAllowed || len(w.pending) > 0 {
		return io.Copy(writerOnly{w}, src)
	}
	if !w.sentHeader {
		w.sendHeader(nil, false)
	}
	if err := w.c.bw.Flush(); err != nil {
		return 0, err
	}
	// net unwraps one LimitedReader to find the file for sendfile.
	remaining := w.declared - w.written
	lr, ok := src.(*io.LimitedReader)
	if !ok || lr.N > remaining {
		lr = &io.LimitedReader{R: src, N: remaining}
	}
	n, err := rf.ReadFrom(lr)
	w.written += n
	return n, err
}

type writerOnly struct{ io.Writer }

// finish completes the response after the handler returned.
func (w *response) finish() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sentHeader {
		if w.declared < 0 && w.bodyAllowed && (!w.head || len(w.pending) > 0) {
			w.declared = int64(len(w.pending))
			w.header["Content-Length"] = []string{strconv.Itoa(len(w.pending))}
		}
		w.sendHeader(w.pending, false)
		if err := w.writeBody(w.pending); err != nil {
			return err
		}
	}
	if w.chunked {
		if _, err := w.c.bw.WriteString("0\r\n\r\n"); err != nil {
			return err
		}
	}
	if !w.head && w.bodyAllowed && w.declared >= 0 && w.written != w.declared {
		w.closeAfter = true // the client would read the next reply as body
	}
	return nil
}

// sendHeader writes the status line and header block. body is the start
// of the body, for Content-Type sniffing; unknownLength asks for chunked
// framing (or close, on HTTP/1.0).
func (w *response) sendHeader(body []byte, unknownLength bool) {
	w.sentHeader = true
	h := w.header
	if w.http10 && !w.closeAfter && (w.head || w.declared >= 0 || !w.bodyAllowed) {
		if _, ok := h["Connection"]; !ok {
			h["Connection"] = keepAliveValue
		}
	} else if w.http10 {
		w.closeAfter = true
	}
	if first(h["Connection"]) == "close" {
		w.closeAfter = true
	}
	if w.bodyAllowed {
		_, haveType := h["Content-Type"]
		if !haveType && first(h["Content-Encoding"]) == "" && len(body) > 0 {
			h["Content-Type"] = []string{http.DetectContentType(body)}
		}
	} else {
		delete(h, "Content-Length")
		delete(h, "Transfer-Encoding")
		if w.status == http.StatusNotModified {
			delete(h, "Content-Type")
		}
	}
	delete(h, "Transfer-Encoding")
	if unknownLength && w.bodyAllowed && !w.head {
		if w.http10 {
			w.closeAfter = true
		} else {
			w.chunked = true
			delete(h, "Content-Length")
		}
	}
	if w.closeAfter && !httpguts.HeaderValuesContainsToken(h["Connection"], "close") {
		delete(h, "Connection")
		if !w.http10 {
			h["Connection"] = closeValue
		}
	}
	w.writeStatusLine(w.status)
	w.writeHeaderLines(dateLine())
	if w.chunked {
		w.c.bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	w.c.bw.WriteString("\r\n")
}

var (
	keepAliveValue = []string{"keep-alive"}
	closeValue     = []string{"close"}
)

func (w *response) writeStatusLine(code int) {
	bw := &w.c.bw
	if w.http10 {
		bw.WriteString("HTTP/1.0 ")
	} else {
		bw.WriteString("HTTP/1.1 ")
	}
	if code == http.StatusOK {
		bw.WriteString("200 OK\r\n")
		return
	}
	var num [8]byte
	bw.Write(strconv.AppendInt(num[:0], int64(code), 10))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(code))
	bw.WriteString("\r\n")
}

// writeHeaderLines writes the handler's header in key order, as net/http
// does, dropping invalid names and turning line breaks in values into
// spaces so a value cannot split the response.
func (w *response) writeHeaderLines(date []byte) {
	bw := &w.c.bw
	keys := w.keys[:0]
	for k := range w.header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.keys = keys
	if date != nil {
		if _, ok := w.header["Date"]; ok {
			date = nil
		}
	}
	for _, k := range keys {
		if date != nil && k > "Date" {
			bw.Write(date)
			date = nil
		}
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range w.header[k] {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
	if date != nil {
		bw.Write(date)
	}
}

type stringWriter interface {
	WriteString(string) (int, error)
	WriteByte(byte) error
}

func writeValue(bw stringWriter, v string) {
	if cleanValue(v) {
		bw.WriteString(v)
		return
	}
	v = textproto.TrimString(v)
	for i := 0; i < len(v); i++ {
		b := v[i]
		if b == '\r' || b == '\n' {
			b = ' '
		}
		bw.WriteByte(b)
	}
}

// cleanValue: v has no line break and no space to trim, the usual case,
// checked in one pass.
func cleanValue(v string) bool {
	if v == "" {
		return true
	}
	if isSpace(v[0]) || isSpace(v[len(v)-1]) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			return false
		}
	}
	return true
}

// isSpace is what textproto.TrimString trims, as net/http does.
func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

func first(vv []string) string {
	if len(vv) == 0 {
		return ""
	}
	return vv[0]
}

// dateLine is "Date: <now>\r\n", formatted once a second.
func dateLine() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.line
	}
	line := append([]byte("Date: "), now.UTC().AppendFormat(nil, http.TimeFormat)...)
	line = append(line, "\r\n"...)
	dateCache.Store(&dateStamp{sec: sec, line: line})
	return line
}

type dateStamp struct {
	sec  int64
	line []byte
}

var dateCache atomic.Pointer[dateStamp]
