package edge

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/edge/httpcache"
	"github.com/intercloud/intercloud/internal/httpsem"
)

// finish answers the client from a fill result.
func (x *exchange) finish(res *fillResult, reason string, collapsed bool) {
	if res.origin != "" {
		x.origin = res.origin
	}
	if res.via != "" {
		// Cache-Status names the tier that answered (fwd=parent).
		reason = res.via
		x.origin = res.via + ":" + res.origin
	}
	switch {
	case res.stale:
		x.class = "stale"
		x.serveEntry(res.entry, x.e.now(), httpcache.CacheStatus{Fwd: httpcache.FwdStale, FwdStatus: res.fwdStatus, Collapsed: collapsed, Detail: "stale-if-error"})
	case res.err != nil:
		x.class = "error"
		cs := httpcache.CacheStatus{Fwd: reason, Collapsed: collapsed}
		if res.mustRevalidate {
			cs.Detail = "stale-not-allowed"
			x.originErrorCode(http.StatusGatewayTimeout, res.err, cs)
			return
		}
		x.originError(res.err, cs)
	case res.entry != nil:
		x.class = "miss"
		if res.fwdStatus == http.StatusNotModified {
			x.class = "revalidated"
		}
		cs := httpcache.CacheStatus{Fwd: reason, FwdStatus: res.fwdStatus, Stored: res.stored, Collapsed: collapsed, Detail: res.reason}
		if res.growing != nil {
			x.serveGrowing(res.entry, res.growing, cs)
			return
		}
		x.serveEntry(res.entry, x.e.now(), cs)
	default:
		x.class = "miss"
		x.stream(res.resp, res.prefix, httpcache.CacheStatus{Fwd: reason, FwdStatus: res.fwdStatus, Detail: res.reason})
	}
}

// serveEntry answers from a stored (or just fetched) complete response:
// Age, Cache-Status, the client's conditionals, Range and HEAD. now is
// the time the entry's age is taken at.
func (x *exchange) serveEntry(ent *entry, now time.Time, cs httpcache.CacheStatus) {
	x.serveBody(ent, nil, now, cs)
}

// serveGrowing answers from an object whose fill is still running.
func (x *exchange) serveGrowing(ent *entry, g *growing, cs httpcache.CacheStatus) {
	now := x.e.now()
	if !g.acquire() {
		// The fill is over and its file closed: its stored entry, or a
		// fetch of our own if it could not be stored.
		if final, _ := g.wait(x.r.Context()); final != nil {
			x.serveEntry(final, now, cs)
			return
		}
		x.fetch(nil, cs.Fwd)
		return
	}
	defer g.release()
	if x.b.compress && ent.status == http.StatusOK && x.r.Header["Range"] == nil && g.mem != nil {
		// Gzip needs the whole body; it is small enough to wait for.
		final, err := g.wait(x.r.Context())
		switch {
		case final != nil:
			x.serveEntry(final, now, cs)
		case err != nil && x.r.Context().Err() == nil:
			x.originError(err, cs)
		}
		return
	}
	x.serveBody(ent, g, now, cs)
}

// serveBody answers from ent, whose body is in memory, on disk, or
// arriving in g.
func (x *exchange) serveBody(ent *entry, g *growing, now time.Time, cs httpcache.CacheStatus) {
	var file *os.File
	if ent.disk != nil && g == nil && x.r.Method != http.MethodHead {
		f, err := ent.disk.d.s.OpenBody(ent.disk.o, 0)
		if err != nil {
			// Replaced (a refresh rewrote it) or evicted since the
			// lookup: the tier's current copy, else a fetch.
			x.e.tier.dropMem(ent)
			if cur, ok := x.e.store.Get(ent.key); ok && cur != ent && (cur.disk == nil || cur.disk.o != ent.disk.o) {
				x.serveBody(cur, nil, now, cs)
				return
			}
			x.fetch(nil, httpcache.FwdURIMiss)
			return
		}
		defer f.Close()
		file = f
	}
	if ep, ok := x.d.errorPages[ent.status]; ok && x.r.URL.Path != ep.Path {
		x.status(cs)
		x.errorPage(ep, ent.status)
		return
	}
	h := x.w.Header()
	// Content-Length is set below for every status but 204. Copying the
	// stored one first would cost a hit the growth of a full header map:
	// Go's small maps (8 entries) grow even to replace an existing key.
	if ent.fields != nil && ent.status != http.StatusNoContent {
		for _, f := range ent.fields {
			h[f.name] = f.values
		}
	} else {
		keepLength := ent.status == http.StatusNoContent
		for k, v := range ent.header {
			if k == "Content-Length" && !keepLength {
				continue
			}
			h[k] = v
		}
	}
	// Age and ttl use whole seconds so that they add up to the lifetime.
	age := ent.age(now).Truncate(time.Second)
	ttl := ent.fresh.Lifetime - age
	if cs == (httpcache.CacheStatus{Hit: true}) && len(h["Cache-Status"]) == 0 && ent.hits != nil {
		// A plain hit: the entry keeps this second's values.
		l := ent.hits.lines(int64(age/time.Second), ttl)
		h["Age"] = l.ageV
		h["Cache-Status"] = l.cache
	} else {
		h["Age"] = ageValue(int64(age / time.Second))
		cs.HasTTL, cs.TTL = true, ttl
		x.status(cs)
	}
	editHeader(h, x.d.headers.Response)

	status, body := ent.status, ent.body
	inMem := ent.disk == nil && g == nil
	if inMem && x.b.compress && status == http.StatusOK && x.r.Header["Range"] == nil {
		body = x.compress(ent, h)
	}
	// The body sent is [start, start+n) of body, of the file or of g;
	// n < 0 while a fill of unknown length grows.
	start, n := int64(0), ent.size
	if inMem {
		n = int64(len(body))
	}
	if status == http.StatusOK && n >= 0 {
		// Compression is only chosen without a Range, so the size only
		// matters where body is the stored, identity-coded one.
		d := httpsem.Decide(x.r.Method, x.r.Header, ent.validators, n)
		switch d.Status {
		case http.StatusNotModified:
			for k := range h {
				if !keepOn304[k] {
					delete(h, k)
				}
			}
			x.w.WriteHeader(http.StatusNotModified)
			return
		case http.StatusPreconditionFailed:
			for k := range h {
				if !keepOn412[k] {
					delete(h, k)
				}
			}
			x.plain(http.StatusPreconditionFailed, "intercloud-edge: precondition failed\n")
			return
		case http.StatusPartialContent:
			// Several ranges would need multipart/byteranges, which
			// the edge does not write: the whole body is always an
			// allowed answer (RFC 9110 §14.2).
			if len(d.Ranges) == 1 {
				size, r := strconv.FormatInt(n, 10), d.Ranges[0]
				h.Set("Content-Range", "bytes "+strconv.FormatInt(r.Start, 10)+"-"+strconv.FormatInt(r.End(), 10)+"/"+size)
				status, start, n = http.StatusPartialContent, r.Start, r.Length
			}
		case http.StatusRequestedRangeNotSatisfiable:
			h.Set("Content-Range", "bytes */"+strconv.FormatInt(n, 10))
			h.Del("Content-Type")
			status, n = http.StatusRequestedRangeNotSatisfiable, 0
		}
	}
	switch {
	case status == http.StatusNoContent:
	case n < 0:
		// Unknown until the origin's body ends: chunked.
	case status == ent.status && n == ent.size && ent.clen != nil && (!inMem || len(body) == len(ent.body)) && h["Content-Encoding"] == nil:
		h["Content-Length"] = ent.clen
	default:
		h["Content-Length"] = []string{strconv.FormatInt(n, 10)}
	}
	x.w.WriteHeader(status)
	if x.r.Method == http.MethodHead || n == 0 {
		return
	}
	switch {
	case inMem:
		x.w.Write(body[start : start+n])
	case file != nil:
		// A file behind a LimitedReader is what net hands to sendfile.
		if start > 0 {
			if _, err := file.Seek(start, io.SeekCurrent); err != nil {
				x.abort = true
				return
			}
		}
		if sent, err := x.w.ReadFrom(&io.LimitedReader{R: file, N: n}); (err != nil || sent < n) && x.r.Context().Err() == nil {
			// A short file or a failed write: either way the client
			// must not take what it got for the whole body.
			x.abort = true
		}
	case g != nil:
		flush := func() { http.NewResponseController(x.w).Flush() }
		w, err := g.copyTo(x.r.Context(), x.w, flush, start, n)
		if errors.Is(err, errDiskWrite) {
			rest := int64(-1)
			if n >= 0 {
				rest = n - w
			}
			if err = x.resume(ent, start+w, rest); err != nil {
				x.e.log.Warn("could not resume a fill that lost its disk file", "key", ent.key, "error", err)
				err = errCut
			}
		}
		if errors.Is(err, errCut) || errors.Is(err, errGrowRead) {
			// The origin's body ended short: the client must see a cut
			// connection, not a complete-looking body.
			x.abort = true
		}
	}
}

// ages holds the Age values of the first hour, shared read-only by every
// response so that a hit does not format its Age.
var ages = func() [][]string {
	a := make([][]string, 3600)
	for i := range a {
		a[i] = []string{strconv.Itoa(i)}
	}
	return a
}()

func ageValue(secs int64) []string {
	if secs >= 0 && secs < int64(len(ages)) {
		return ages[secs]
	}
	return []string{strconv.FormatInt(secs, 10)}
}

// responseVia is this hop in the Via of responses, which the edge always
// receives from origins over HTTP/1.1.
const responseVia = "1.1 intercloud-edge"

// addVia appends to Via on a fresh slice: the existing one may belong to
// a stored entry shared by concurrent requests.
func addVia(h http.Header, v string) {
	old := h["Via"]
	nv := make([]string, len(old), len(old)+1)
	copy(nv, old)
	h["Via"] = append(nv, v)
}

// keepOn304 are the fields a 304 from cache carries (RFC 9110 §15.4.5).
var keepOn304 = map[string]bool{"Cache-Control": true, "Content-Location": true, "Date": true, "Etag": true, "Expires": true,
	"Vary": true, "Last-Modified": true, "Age": true, "Cache-Status": true, "Via": true}

// keepOn412 are the stored fields a 412 keeps: it describes no
// representation, only the hop that answered.
var keepOn412 = map[string]bool{"Date": true, "Cache-Status": true, "Via": true}

// stream relays an origin response that is not kept in cache.
func (x *exchange) stream(resp *http.Response, prefix []byte, cs httpcache.CacheStatus) {
	defer resp.Body.Close()
	if ep, ok := x.d.errorPages[resp.StatusCode]; ok && x.r.URL.Path != ep.Path {
		x.status(cs)
		x.errorPage(ep, resp.StatusCode)
		return
	}
	removeHopByHop(resp.Header)
	h := x.w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	x.status(cs)
	addVia(h, responseVia)
	editHeader(h, x.d.headers.Response)
	if resp.ContentLength >= 0 && x.r.Method != http.MethodHead {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	x.w.WriteHeader(resp.StatusCode)
	if x.r.Method == http.MethodHead {
		return
	}
	if len(prefix) > 0 {
		if _, err := x.w.Write(prefix); err != nil {
			return
		}
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	if _, err := io.CopyBuffer(writerOnly{x.w}, resp.Body, *bp); err != nil {
		// The origin's body broke off (or the client left): the client
		// must see a truncated response, not a complete shorter one.
		x.abort = true
	}
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

type writerOnly struct{ io.Writer }

// status appends this cache's member to Cache-Status (RFC 9211 §2: the
// member of the cache closest to the client comes last).
func (x *exchange) status(cs httpcache.CacheStatus) {
	cs.Cache = cacheName
	h := x.w.Header()
	if prev := h["Cache-Status"]; len(prev) > 0 {
		h["Cache-Status"] = []string{strings.Join(prev, ", ") + ", " + cs.String()}
		return
	}
	h["Cache-Status"] = []string{cs.String()}
}

// originError answers 502 (504 on timeouts) or the distribution's page.
func (x *exchange) originError(err error, cs httpcache.CacheStatus) {
	code := http.StatusBadGateway
	if isTimeout(err) {
		code = http.StatusGatewayTimeout
	}
	x.originErrorCode(code, err, cs)
}

func (x *exchange) originErrorCode(code int, err error, cs httpcache.CacheStatus) {
	x.e.log.Warn("origin request failed", "distribution", x.d.name, "path", x.r.URL.Path, "error", err)
	if cs.Detail == "" {
		cs.Detail = "origin-error"
	}
	x.status(cs)
	if ep, ok := x.d.errorPages[code]; ok {
		x.errorPage(ep, code)
		return
	}
	msg := "intercloud-edge: the origin is unreachable\n"
	if code == http.StatusGatewayTimeout {
		msg = "intercloud-edge: the origin did not answer in time\n"
	}
	x.plain(code, msg)
}

func (x *exchange) plain(code int, msg string) {
	h := x.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(msg)))
	h.Set("Cache-Control", "no-store")
	if h.Get("Cache-Status") == "" {
		h.Set("Cache-Status", cacheName+"; fwd=bypass")
	}
	x.w.WriteHeader(code)
	if x.r.Method != http.MethodHead {
		io.WriteString(x.w, msg)
	}
}

// editHeader applies a header policy: remove deletes, set replaces, add appends.
func editHeader(h http.Header, e config.HeaderEdit) {
	if len(e.Remove)+len(e.Set)+len(e.Add) == 0 {
		return
	}
	for _, k := range e.Remove {
		h.Del(k)
	}
	for k, v := range e.Set {
		h.Set(k, v)
	}
	for k, v := range e.Add {
		h.Add(k, v)
	}
}

// recorder counts what was written for metrics and the access log.
type recorder struct {
	http.ResponseWriter
	code  int
	bytes int64
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 && code >= 200 {
		// 1xx interim responses come before the final status.
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ReadFrom lets a body from a file reach the socket with sendfile where
// the server's writer offers it (internal/h1 and net/http over TCP).
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{r.ResponseWriter}, src)
	}
	r.bytes += n
	return n, err
}
