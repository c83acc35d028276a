package edge

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/intercloud/intercloud/edge/httpcache"
	"github.com/intercloud/intercloud/internal/httpsem"
)

// cacheName is this cache's identifier in Cache-Status.
const cacheName = "intercloud-edge"

// exchange is one client request on its way through the edge.
type exchange struct {
	e     *Edge
	w     *recorder
	rec   recorder // w points here: one allocation for both
	r     *http.Request
	t     *table
	d     *dist
	b     *behavior
	start time.Time

	clientIP string
	query    string
	fwd      http.Header
	reqCC    httpcache.CacheControl
	// kb is the cache key, in kbuf when it fits; key is the same as a
	// string, made by storeKey for what outlives the request.
	kb     []byte
	kbuf   [128]byte
	key    string
	marker *entry // the vary marker at key, when there is one
	// vkb is the variant key (the key, the marker's generation and the
	// request's vary key from vkOff on), in vbuf when it fits; varyKey
	// is its vary key as a string, made by vary when needed.
	vkb     []byte
	vkOff   int
	vbuf    [256]byte
	varyKey string

	// member is the origin the request is routed to (the group's active
	// member or, for its share of clients, the canary).
	member *originRef

	// hops is how many edges the request crossed before this one; level
	// the tier it was sent to (0 a client's, 1 a cloud peer's, 2 a
	// parent's); via the path the fill took ("" for the origin).
	hops, level int
	via         string

	class  string // metrics label: hit, miss, stale, revalidated, bypass, error
	origin string
	// abort: the response was cut short; the connection (or stream) is
	// reset so that the client cannot take it for complete.
	abort bool
}

// ServeHTTP is the whole request flow: route, look up, serve or fetch.
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := exchanges.Get().(*exchange)
	x.e, x.r, x.t = e, r, e.table.Load()
	if e.alog.Load() != nil {
		// Only the access log needs the duration; a clock read is not free.
		x.start = time.Now()
	}
	x.rec.ResponseWriter = w
	x.w = &x.rec
	x.serve()
	e.observe(x)
	abort := x.abort
	// Nothing keeps x past the request: a background refresh works on a
	// copy. After a panic x is simply not reused.
	*x = exchange{}
	exchanges.Put(x)
	if abort {
		panic(http.ErrAbortHandler)
	}
}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

func (x *exchange) serve() {
	r := x.r
	if x.t == nil {
		x.class = "error"
		x.plain(http.StatusServiceUnavailable, "intercloud-edge: no configuration loaded yet\n")
		return
	}
	host := normalizeHost(r.Host)
	d := x.t.lookup(host)
	if r.TLS != nil && r.TLS.ServerName != "" {
		// A connection opened for one distribution must not be used to
		// reach another one (RFC 9110 §15.5.20).
		if sni := normalizeHost(r.TLS.ServerName); sni != host && (d == nil || x.t.lookup(sni) != d) {
			x.class = "error"
			x.plain(http.StatusMisdirectedRequest, "intercloud-edge: host "+quote(host)+" is not served on this TLS connection (SNI "+quote(sni)+")\n")
			return
		}
	}
	if d == nil {
		x.class = "error"
		x.plain(http.StatusNotFound, "intercloud-edge: no distribution serves host "+quote(host)+"\n")
		return
	}
	x.d = d
	x.b = d.match(r.URL.Path)
	if x.b == nil {
		x.class = "error"
		x.plain(http.StatusNotFound, "intercloud-edge: no behavior of distribution "+d.name+" matches this path\n")
		return
	}
	if !x.b.methods[r.Method] {
		x.class = "error"
		x.w.Header().Set("Allow", x.b.allow)
		x.plain(http.StatusMethodNotAllowed, "intercloud-edge: method "+r.Method+" is not allowed here\n")
		return
	}
	if x.b.redirectHTTPS && r.TLS == nil {
		x.class = "bypass"
		target := "https://" + host
		if x.b.httpsPort != "" {
			target += ":" + x.b.httpsPort
		}
		target += r.URL.RequestURI()
		x.w.Header().Set("Location", target)
		x.plain(http.StatusMovedPermanently, "intercloud-edge: this path is served over HTTPS: "+target+"\n")
		return
	}
	if !x.readHops() {
		return
	}
	if _, ok := r.Header[hdrProbe]; ok && x.level == 2 {
		x.answerProbe()
		return
	}
	x.clientIP = clientIP(r)
	x.member = x.b.target.primary(x.clientIP)
	x.query = x.b.forwardedQuery(r.URL.RawQuery)
	// Canonical names read directly: Values and Get would canonicalise
	// them again on every request.
	cc := r.Header["Cache-Control"]
	x.reqCC, _ = httpcache.ParseCacheControl(cc)
	if len(cc) == 0 && len(r.Header["Pragma"]) > 0 && strings.Contains(strings.ToLower(r.Header["Pragma"][0]), "no-cache") {
		x.reqCC.NoCache = true
	}
	x.kb = x.b.appendCacheKey(x.kbuf[:0], d, r, x.query)
	if x.b.target.isCanary(x.member) {
		x.kb = appendMemberKey(x.kb, x.member)
	}

	switch {
	case !x.b.cache:
		x.passThrough(httpcache.FwdBypass, "behavior")
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		x.passThrough(httpcache.FwdMethod, "")
	default:
		x.cached()
	}
}

// cached serves a GET or HEAD of a caching behavior.
func (x *exchange) cached() {
	now := x.e.now()
	reason := httpcache.FwdURIMiss
	// The lookup reads the key in place: a hit makes no key string.
	ent, ok := x.e.store.Get(unsafe.String(unsafe.SliceData(x.kb), len(x.kb)))
	if ok && ent.marker {
		x.marker = ent
		// The variant's key, in place too.
		vk := appendVariantPrefix(x.vbuf[:0], x.kb, ent.gen)
		x.vkOff = len(vk)
		x.vkb = httpcache.AppendVaryKey(vk, ent.varyNames, x.r.Header)
		ent, ok = x.e.store.Get(unsafe.String(unsafe.SliceData(x.vkb), len(x.vkb)))
		reason = httpcache.FwdVary
	}
	var stale *entry
	if ok && ent.routed != x.member.id && !x.b.target.keepCache {
		// Stored for another member, before a switch: this client gets
		// what its member serves now. fill sends the entry's validators
		// only to its producer, so a full fetch replaces it.
		stale, reason = ent, httpcache.FwdMiss
	} else if ok {
		age := ent.age(now)
		switch httpcache.Evaluate(ent.fresh, age, x.reqCC) {
		case httpcache.Fresh, httpcache.StaleServable:
			x.class = "hit"
			x.serveEntry(ent, now, httpcache.CacheStatus{Hit: true})
			return
		case httpcache.StaleRevalidateAsync:
			x.class = "stale"
			x.serveEntry(ent, now, httpcache.CacheStatus{Hit: true, Detail: "stale-while-revalidate"})
			x.e.revalidateAsync(x, ent)
			return
		}
		stale, reason = ent, httpcache.FwdStale
		if x.reqCC.NoCache || !httpcache.Absent(x.reqCC.MaxAge) || !httpcache.Absent(x.reqCC.MinFresh) {
			reason = httpcache.FwdRequest
		}
	}
	if x.reqCC.OnlyIfCached {
		x.class = "miss"
		x.status(httpcache.CacheStatus{Fwd: reason, Detail: "only-if-cached"})
		x.plain(http.StatusGatewayTimeout, "intercloud-edge: not in cache (only-if-cached)\n")
		return
	}
	if stale == nil && x.r.Header.Get("Range") != "" {
		// A partial response is never stored as if it were the object;
		// with a disk tier it is filled in slices, which are.
		if x.sliced() {
			return
		}
		x.passThrough(httpcache.FwdMiss, "range")
		return
	}
	x.fetch(stale, reason)
}

// fetch fills the cache from the origin, collapsing concurrent misses of
// the same object into one origin request.
func (x *exchange) fetch(stale *entry, reason string) {
	ck := x.flightKey()
	if v, ok := x.e.filling.Load(ck); ok {
		// A streaming fill of this object is running: read it as it grows.
		res := v.(*fillResult)
		if len(res.entry.varyNames) == 0 || httpcache.VaryKey(res.entry.varyNames, x.r.Header) == res.varyKey {
			x.finish(res, reason, true)
			return
		}
	}
	leader := false
	v, _, _ := x.e.flight.Do(ck, func() (any, error) {
		leader = true
		return x.e.fill(x, stale), nil
	})
	res := v.(*fillResult)
	if !leader {
		if res.err != nil && res.entry == nil {
			// The origin just failed for the leader; a second try per
			// waiter would only pile onto it.
			x.finish(res, reason, true)
			return
		}
		if res.shareable && res.entry != nil && (len(res.entry.varyNames) == 0 || httpcache.VaryKey(res.entry.varyNames, x.r.Header) == res.varyKey) {
			x.finish(res, reason, true)
			return
		}
		// Not shareable (private, too large, another variant): this
		// client gets its own origin response.
		res = x.e.fill(x, stale)
	}
	if res.own != nil {
		r := *res
		r.entry = res.own
		res = &r
	}
	x.finish(res, reason, false)
}

// flightKey names the fetch of this request's object: concurrent misses
// of one key share it. Requests routed to different members do not share
// a fetch: across a switch, one sent under the old table would hand the
// old colour to one sent under the new.
func (x *exchange) flightKey() string {
	ck := x.storeKey()
	if x.marker != nil {
		ck += "\x00" + x.vary()
	}
	return ck + "\x00" + uitoa(uint64(x.member.id))
}

// passThrough forwards the request as is (within the behavior's forward
// rules) and streams the answer; unsafe methods invalidate the URI.
func (x *exchange) passThrough(reason, detail string) {
	x.class = "bypass"
	h := x.forwarded().Clone()
	for _, f := range httpsem.Fields {
		if v, ok := x.r.Header[f]; ok {
			h[f] = v
		}
	}
	var body io.ReadCloser = http.NoBody
	var cb *clientBody
	if x.r.ContentLength != 0 {
		cb = &clientBody{ReadCloser: x.r.Body}
		body = cb
	}
	resp, o, err := x.e.roundTrip(x.r.Context(), x, x.r.Method, h, revalidation{}, body, x.r.ContentLength)
	if err != nil {
		x.class = "error"
		if berr := cb.failed(); berr != nil {
			// The client's body broke (bad chunked framing, cut short):
			// its fault, not the origin's, which never got a whole request.
			x.w.Header().Set("Connection", "close")
			x.status(httpcache.CacheStatus{Fwd: reason, Detail: "bad-request-body"})
			x.plain(http.StatusBadRequest, "intercloud-edge: the request body is malformed: "+berr.Error()+"\n")
			return
		}
		x.originError(err, httpcache.CacheStatus{Fwd: reason, Detail: detail})
		return
	}
	x.origin = o.name
	if !isSafe(x.r.Method) && resp.StatusCode < 400 {
		x.e.invalidateURI(x, resp.Header)
	}
	x.stream(resp, nil, httpcache.CacheStatus{Fwd: reason, FwdStatus: resp.StatusCode, Detail: detail})
}

// storeKey is the cache key as a string of its own, for the store and
// for what else outlives the request.
func (x *exchange) storeKey() string {
	if x.key == "" {
		x.key = string(x.kb)
	}
	return x.key
}

// vary is the request's vary key under the marker found, as a string
// of its own: only what misses or revalidates needs it.
func (x *exchange) vary() string {
	if x.varyKey == "" && x.vkb != nil {
		x.varyKey = string(x.vkb[x.vkOff:])
	}
	return x.varyKey
}

// forwarded is the origin request header, built on first use: a hit
// never needs it.
func (x *exchange) forwarded() http.Header {
	if x.fwd == nil {
		x.fwd = x.b.forwardedHeader(x.r, x.clientIP)
		editHeader(x.fwd, x.d.headers.Request)
	}
	return x.fwd
}

func isSafe(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// appendMemberKey appends the member to a cache key. Only a canary's
// requests are keyed so: during a canary both members' copies of an
// object are stored side by side, and the active member's requests keep
// the keys (and the copies) they had before the canary started.
func appendMemberKey(k []byte, m *originRef) []byte {
	k = append(k, "\x00member:"...)
	return strconv.AppendUint(k, uint64(m.id), 10)
}

func variantKey(key string, gen uint64, vk string) string {
	b := appendVariantPrefix(make([]byte, 0, len(key)+len(vk)+24), key, gen)
	return string(append(b, vk...))
}

// appendVariantPrefix appends a variant key's part before its vary key:
// the marker's key and generation.
func appendVariantPrefix[K string | []byte](dst []byte, key K, gen uint64) []byte {
	dst = append(dst, key...)
	dst = append(dst, "\x00v"...)
	dst = strconv.AppendUint(dst, gen, 10)
	return append(dst, 0)
}

func quote(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return '?'
		}
		return r
	}, s) + `"`
}
