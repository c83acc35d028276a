package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strconv"
	"time"

	"github.com/intercloud/intercloud/edge/httpcache"
)

// fillTimeout bounds one origin fetch that fills the cache; it does not
// depend on the client, which may leave without spoiling the entry.
const fillTimeout = 2 * time.Minute

// fillResult is the outcome of one origin fetch for a cacheable request.
type fillResult struct {
	entry     *entry // a complete response (stored, or shareable)
	stored    bool
	shareable bool
	varyKey   string
	stale     bool // entry is a stale one served because the origin failed

	// resp streams to the one client that made the request (not
	// storable or too large); prefix is what was read of it already.
	resp   *http.Response
	prefix []byte

	// growing, when set, is entry's body still arriving from the origin
	// (a streaming fill): every client of the fill reads it as it grows.
	growing *growing

	reason    string // why it was not stored
	fwdStatus int
	origin    string
	via       string // the tier that answered: tierPeer, tierParent or ""
	err       error
	// own, when set, is the leader's answer: the entry before the fields
	// of qualified private / no-cache were removed for storing.
	own *entry
	// mustRevalidate: a stored response could not be revalidated and may
	// not be served stale: the answer is 504 (RFC 9111 §5.2.2.2).
	mustRevalidate bool
}

// revalidation is a conditional request for a stored entry, sent only to
// the member that produced it: another member's copy may differ with the
// same validators (two static servers, one file mtime), and its 304
// would keep the old copy alive.
type revalidation struct {
	h        http.Header // the request with the entry's validators
	producer memberID
}

// fill fetches the object (revalidating stale with the member that
// produced it, when it has validators) and stores what may be stored.
func (e *Edge) fill(x *exchange, stale *entry) *fillResult {
	h := x.forwarded().Clone()
	var cond revalidation
	if stale != nil {
		etag, lm := stale.header.Get("ETag"), stale.header.Get("Last-Modified")
		if etag != "" || lm != "" {
			cond = revalidation{h: h.Clone(), producer: stale.producer}
		}
		if etag != "" {
			cond.h.Set("If-None-Match", etag)
		}
		if lm != "" {
			cond.h.Set("If-Modified-Since", lm)
		}
	}
	// fillTimeout bounds the fetch; a streaming fill turns it into an
	// idle timeout, reset by every read of the body.
	ctx, cancelCtx := context.WithCancel(context.WithoutCancel(x.r.Context()))
	idle := time.AfterFunc(fillTimeout, cancelCtx)
	cancel := func() { idle.Stop(); cancelCtx() }
	gen := e.purgeGen.Load()
	reqTime := e.now()
	resp, o, err := e.roundTrip(ctx, x, http.MethodGet, h, cond, http.NoBody, 0)
	now := e.now()
	staleOK := func() bool {
		return stale != nil && httpcache.ServeStaleOnError(stale.fresh, stale.age(now), x.reqCC)
	}
	if err != nil {
		cancel()
		if staleOK() {
			return &fillResult{entry: stale, stale: true, shareable: true, err: err}
		}
		return &fillResult{err: err, mustRevalidate: stale != nil}
	}
	res := &fillResult{fwdStatus: resp.StatusCode, origin: o.name, via: x.via}
	folded := folds(resp) // before resp.Body is wrapped
	removeHopByHop(resp.Header)
	if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
		// A missing or invalid Date is replaced by the time the response
		// arrived (RFC 9110 §6.6.1), which freshness then counts from.
		resp.Header.Set("Date", now.UTC().Format(http.TimeFormat))
	}
	// Only the producer was asked conditionally, so only its 304 speaks
	// for the stored copy.
	if resp.StatusCode == http.StatusNotModified && stale != nil && o.id == stale.producer {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		cancel()
		ne := *stale
		ne.header = httpcache.MergeNotModified(stale.header, resp.Header)
		ne.header.Del("Age")
		ne.finalize()
		ne.requestTime, ne.responseTime = reqTime, now
		ne.routed = x.member.id
		ne.initialAge = httpcache.InitialAge(resp.Header, reqTime, now)
		cc, view, _ := httpcache.ResponseRules(ne.header)
		httpcache.StripQualified(ne.header, cc)
		ne.index()
		ne.fresh = httpcache.ComputeFreshness(ne.status, view, cc, x.b.ttl)
		e.obsFolded(x, folded, &ne.fresh)
		res.entry, res.shareable, res.varyKey = &ne, true, x.vary()
		if gen == e.purgeGen.Load() {
			res.stored = e.store.Set(&ne, ne.retention(e.keepValidated))
		}
		return res
	}
	if resp.StatusCode >= 500 && staleOK() {
		resp.Body.Close()
		cancel()
		return &fillResult{entry: stale, stale: true, shareable: true, fwdStatus: resp.StatusCode, origin: o.name}
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}

	respCC, view, ccErr := httpcache.ResponseRules(resp.Header)
	if ccErr != nil {
		e.log.Debug("origin sent an invalid Cache-Control", "distribution", x.d.name, "origin", o.name, "path", x.r.URL.Path, "error", ccErr)
	}
	reason := httpcache.Storable(http.MethodGet, h, x.reqCC, resp.StatusCode, view, respCC,
		httpcache.StoreOptions{AllowSetCookie: x.b.cacheSetCookie, HasDefaultTTL: x.b.ttl.Default != nil})
	fresh := httpcache.ComputeFreshness(resp.StatusCode, view, respCC, x.b.ttl)
	e.obsFolded(x, folded, &fresh)
	if reason == "" && fresh.Lifetime <= 0 && !httpcache.HasValidator(resp.Header) && fresh.StaleIfError <= 0 && fresh.StaleWhileRevalidate <= 0 {
		reason = "not-reusable"
	}
	if reason == "" && resp.ContentLength > e.maxStored() {
		reason = "too-large"
	}
	if reason != "" {
		if stale != nil && reason != "request no-store" && resp.StatusCode < 500 {
			// The origin's current answer may not be stored: the older
			// one it replaces must not be served any more either.
			e.store.Del(stale.key)
		}
		res.resp, res.reason = resp, reason
		return res
	}
	if mem, d := e.streamFill(resp.ContentLength); mem || d != nil {
		ent, own := e.newEntry(x, resp, nil, o, fresh, respCC, reqTime, now)
		ent.size = resp.ContentLength
		ent.finalize()
		if own != nil {
			own.size, own.clen = ent.size, ent.clen
		}
		res.own = own
		if r := e.startGrowing(x, res, resp, ent, mem, d, x.flightKey(), gen, idle); r != nil {
			return r
		}
		res.own = nil
	}
	body, err := readLimited(resp.Body, resp.ContentLength, e.maxObject.Load())
	if err != nil {
		resp.Body.Close()
		if staleOK() {
			return &fillResult{entry: stale, stale: true, shareable: true, err: err}
		}
		return &fillResult{err: fmt.Errorf("%w: read body from origin %s: %v", errOrigin, o.name, err)}
	}
	if int64(len(body)) > e.maxObject.Load() {
		res.resp, res.prefix, res.reason = resp, body, "too-large"
		return res
	}
	resp.Body.Close()
	ent, own := e.newEntry(x, resp, body, o, fresh, respCC, reqTime, now)
	res.own = own
	res.entry, res.shareable = ent, true
	if gen != e.purgeGen.Load() {
		res.reason = "purged"
		return res
	}
	res.stored, res.varyKey = e.storeEntry(x, ent)
	return res
}

// obsFolded makes fresh stale on arrival when the origin folded a field
// it is computed from (obs-fold, obsfold.go): such a value is not trusted
// as the origin meant it. Restrictions (no-store, private) still apply.
func (e *Edge) obsFolded(x *exchange, f []string, fresh *httpcache.Freshness) {
	if foldedFreshness(f) {
		fresh.Lifetime, fresh.Source = 0, "obs-fold"
		e.log.Debug("origin folded a field freshness depends on: stale", "distribution", x.d.name, "path", x.r.URL.Path, "fields", f)
	}
}

// newEntry makes the entry of an origin response (body nil for a
// streaming fill) and, when the response has qualified private or
// no-cache fields, the requesting client's own copy with them.
func (e *Edge) newEntry(x *exchange, resp *http.Response, body []byte, o *originRef, fresh httpcache.Freshness, respCC httpcache.CacheControl, reqTime, now time.Time) (ent, own *entry) {
	ent = &entry{
		dist: x.d.name, path: x.r.URL.Path,
		status: resp.StatusCode, header: resp.Header, body: body,
		producer: o.id, routed: x.member.id,
		requestTime: reqTime, responseTime: now,
		initialAge: httpcache.InitialAge(resp.Header, reqTime, now),
		fresh:      fresh,
	}
	ent.header.Del("Age")
	ent.finalize()
	if len(respCC.PrivateFields)+len(respCC.NoCacheFields) > 0 {
		// The requesting client gets the whole response; what is stored
		// (and what collapsed clients get) lacks the qualified fields.
		whole := *ent
		own = &whole
		stripped := *ent
		stripped.header = ent.header.Clone()
		httpcache.StripQualified(stripped.header, respCC)
		stripped.index()
		ent = &stripped
	}
	return ent, own
}

// storeEntry places ent under its key, creating or reusing the vary
// marker, and stores it.
func (e *Edge) storeEntry(x *exchange, ent *entry) (bool, string) {
	ok, vk := e.placeEntry(x, ent)
	if !ok {
		return false, ""
	}
	return e.store.Set(ent, ent.retention(e.keepValidated)), vk
}

// placeEntry sets ent's key, storing or reusing the vary marker it
// needs; false when the marker was refused.
func (e *Edge) placeEntry(x *exchange, ent *entry) (bool, string) {
	ttl := ent.retention(e.keepValidated)
	names, _ := httpcache.VaryNames(ent.header)
	if len(names) == 0 {
		ent.key = x.storeKey()
		return true, ""
	}
	ent.varyNames = names
	m, ok := e.store.Get(x.storeKey())
	if !ok || !m.marker || !equalStrings(m.varyNames, names) {
		m = &entry{key: x.storeKey(), dist: ent.dist, path: ent.path, marker: true, varyNames: names, gen: e.markerGen.Add(1)}
	}
	// The marker lives as long as its longest-lived variant.
	if !e.store.Set(m, max(ttl, 24*time.Hour)) {
		return false, ""
	}
	vk := httpcache.VaryKey(names, x.r.Header)
	ent.key = variantKey(x.storeKey(), m.gen, vk)
	return true, vk
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// roundTrip sends the request to the target's members: the primary, then
// once to the next healthy member on a connect error, a timeout or a
// failover status (CloudFront origin failover). Requests with a body are
// not replayed. The member cond was produced by gets cond's header, the
// others h.
func (e *Edge) roundTrip(ctx context.Context, x *exchange, method string, h http.Header, cond revalidation, body io.ReadCloser, length int64) (*http.Response, *originRef, error) {
	if method == http.MethodGet && body == http.NoBody && x.b.tier != nil && x.b.cache {
		// Misses of cached behaviors go through the tiers; what a
		// behavior never caches goes to the origin, as without tiers.
		return e.roundTripTiers(ctx, x, h, cond)
	}
	return e.roundTripDirect(ctx, x, method, h, cond, body, length)
}

// roundTripDirect is roundTrip to the origin group itself.
func (e *Edge) roundTripDirect(ctx context.Context, x *exchange, method string, h http.Header, cond revalidation, body io.ReadCloser, length int64) (*http.Response, *originRef, error) {
	tg := x.b.target
	members := tg.order(x.member, e.health)
	if x.w != nil && x.r.ProtoAtLeast(1, 1) {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{Got1xxResponse: x.interim})
	}
	var errs []error
	for i, o := range members {
		if i > 0 {
			if body != http.NoBody {
				break
			}
			e.metrics.failovers.WithLabelValues(x.d.name).Inc()
		}
		hdr := h
		if cond.h != nil && o.id == cond.producer {
			hdr = cond.h
		}
		// The member's paths: direct, or over each gateway link in the
		// measured order (linkpaths.go). A path that gives no answer is
		// left for the next one while the request can be sent again.
		via := e.originPaths(o, o == x.member && x.b.pathPolicy.choose)
		var resp *http.Response
		var err error
		// The head's folded fields, read off the connection.
		slot := &foldSlot{}
		for j, path := range via {
			rctx, ct := ctx, (*connTrace)(nil)
			if o == x.member && (x.b.tier != nil || len(o.links) > 0) {
				rctx, ct = traceConn(ctx) // a measured path (tiers.go)
			}
			rctx = traceFolds(rctx, slot)
			req := (&http.Request{
				Method: method, URL: originURL(o, x.r, x.query), Header: hdr, Host: o.host,
				Body: body, ContentLength: length, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			}).WithContext(rctx)
			if body == http.NoBody {
				req.Body = nil
			}
			start := time.Now()
			resp, err = o.linkClient(path).Do(req)
			ttfb := time.Since(start)
			e.metrics.originSeconds.WithLabelValues(x.d.name, o.name).Observe(ttfb.Seconds())
			if ct != nil && (err == nil || ctx.Err() == nil) {
				e.observeDirect(o, path, resp, err, ttfb, ct)
			}
			if err == nil || ctx.Err() != nil || j+1 == len(via) || body != http.NoBody {
				break
			}
			e.metrics.failovers.WithLabelValues(x.d.name).Inc()
		}
		if err != nil {
			if ctx.Err() != nil {
				// The client left or the fill timed out: not the origin's
				// fault, and no point in trying another member.
				return nil, nil, fmt.Errorf("%w: origin %s: %w", errOrigin, o.name, err)
			}
			e.originFetches.Add(1)
			e.originErrors.Add(1)
			e.health.result(o.key, false)
			errs = append(errs, fmt.Errorf("origin %s: %w", o.name, err))
			continue
		}
		failover := tg.failoverOn[resp.StatusCode]
		e.originFetches.Add(1)
		if resp.StatusCode >= 500 {
			e.originErrors.Add(1)
		}
		e.health.result(o.key, resp.StatusCode < 500 && !failover)
		if failover && i+1 < len(members) && body == http.NoBody {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			errs = append(errs, fmt.Errorf("origin %s: status %d", o.name, resp.StatusCode))
			continue
		}
		if f := slot.get(); len(f) > 0 {
			// Outermost, where fill and fetchSlice look for it.
			resp.Body = &foldedBody{ReadCloser: resp.Body, folded: f}
		}
		return resp, o, nil
	}
	return nil, nil, fmt.Errorf("%w: %w", errOrigin, errors.Join(errs...))
}

// interim relays an origin's 1xx interim response (102 Processing, 103
// Early Hints) to the client while the final one is awaited; it is never
// stored. 100 Continue is between the edge and the origin, and no
// HTTP/1.0 client may get a 1xx (RFC 9110 §15.2). Called by the
// transport while x's goroutine waits in roundTrip.
func (x *exchange) interim(code int, h textproto.MIMEHeader) error {
	if code == http.StatusContinue || code == http.StatusSwitchingProtocols {
		return nil
	}
	w := x.w.Header()
	saved := w.Clone()
	clear(w)
	for k, v := range h {
		w[k] = v
	}
	removeHopByHop(w)
	x.w.WriteHeader(code)
	clear(w)
	for k, v := range saved {
		w[k] = v
	}
	return nil
}

// revalidateAsync refreshes a stale entry in the background, once per
// object however many clients see it stale (RFC 5861 §3).
func (e *Edge) revalidateAsync(x *exchange, stale *entry) {
	key := x.storeKey() + "\x00" + x.vary() + "\x00" + uitoa(uint64(x.member.id))
	// bx outlives x, which is reused after the request: nothing of bx
	// may point into x.
	bx := *x
	bx.w, bx.rec = nil, recorder{}
	bx.kb = nil  // the key is in bx.key
	bx.vkb = nil // the vary key is in bx.varyKey
	bx.r = x.r.Clone(context.WithoutCancel(x.r.Context()))
	bx.fwd = x.forwarded().Clone()
	// One refresh per object at a time; hits meanwhile spawn nothing.
	if _, running := e.refreshing.LoadOrStore(key, struct{}{}); running {
		return
	}
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		defer e.refreshing.Delete(key)
		res := e.fill(&bx, stale)
		if res.resp != nil {
			res.resp.Body.Close()
		}
	}()
}

// invalidateURI drops the stored object of the request's URI and of the
// same-host Location / Content-Location (RFC 9111 §4.4).
func (e *Edge) invalidateURI(x *exchange, respH http.Header) {
	e.delObject(x.b, x.d, x.r, x.query)
	for _, f := range []string{"Location", "Content-Location"} {
		v := respH.Get(f)
		if v == "" {
			continue
		}
		u, err := x.r.URL.Parse(v)
		if err != nil || (u.Host != "" && normalizeHost(u.Host) != normalizeHost(x.r.Host)) {
			continue
		}
		r2 := x.r.Clone(x.r.Context())
		r2.URL = &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
		b := x.d.match(u.Path)
		if b == nil {
			continue
		}
		e.delObject(b, x.d, r2, b.forwardedQuery(u.RawQuery))
	}
}

// delObject drops the stored object of r under b: the copy of the
// group's active member and, during a canary, the canary's.
func (e *Edge) delObject(b *behavior, d *dist, r *http.Request, query string) {
	k := b.appendCacheKey(make([]byte, 0, 128), d, r, query)
	e.store.Del(string(k))
	if c := b.target.canary; b.target.isCanary(c) {
		e.store.Del(string(appendMemberKey(k, c)))
	}
}

// readLimited reads at most limit+1 bytes so the caller can tell "too large".
func readLimited(r io.Reader, length, limit int64) ([]byte, error) {
	if length >= 0 && length <= limit {
		buf := make([]byte, length)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		// A body longer than its Content-Length is the transport's error.
		return buf, nil
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && cap(b)-len(b) > len(b)/8 {
		// ReadAll grows by doubling; a stored body must not pin up to
		// twice its size (the cache accounts len, memory holds cap).
		b = append([]byte(nil), b...)
	}
	return b, err
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelBody) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func uitoa(n uint64) string { return strconv.FormatUint(n, 10) }
