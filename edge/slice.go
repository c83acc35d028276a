package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/intercloud/intercloud/edge/httpcache"
	"github.com/intercloud/intercloud/internal/httpsem"
)

// Range misses are filled in slices, as nginx's slice module does: the
// object is fetched and stored in pieces of cache.slice bytes, each its
// own cache entry under the object's key and its index, so that a client
// seeking in a large video waits for the slices it asked for, never for
// the whole file. Every slice must be the same representation as the
// first one fetched (same strong ETag or Last-Modified, same length);
// a mismatch drops the slices and passes the request through.

// errSliceMismatch: the origin's object changed between slices.
var errSliceMismatch = errors.New("slices of different representations")

// slice is one stored piece: its entry (status 206, body = the piece)
// and what its Content-Range said.
type slice struct {
	ent   *entry
	total int64
	hit   bool
}

// sliced answers a GET with a Range that missed the cache from slices;
// false, with nothing written, when it does not apply (no disk tier,
// conditionals, an origin that does not answer ranges).
func (x *exchange) sliced() bool {
	size := int64(x.t.cache.Slice)
	if size <= 0 || x.e.tier.disk.Load() == nil || x.r.Method != http.MethodGet || x.marker != nil {
		return false
	}
	for _, f := range httpsem.Fields {
		if f != "Range" && x.r.Header[f] != nil {
			return false
		}
	}
	first, err := x.e.slice(x, rangeStart(x.r.Header.Get("Range"))/size, size, nil)
	if err != nil {
		x.e.log.Debug("slice fill not possible", "distribution", x.d.name, "path", x.r.URL.Path, "error", err)
		return false
	}
	d := httpsem.Decide(x.r.Method, x.r.Header, first.ent.validators, first.total)
	switch {
	case d.Status == http.StatusRequestedRangeNotSatisfiable:
		x.class = "miss"
		h := x.w.Header()
		h.Set("Content-Range", "bytes */"+strconv.FormatInt(first.total, 10))
		x.status(httpcache.CacheStatus{Fwd: httpcache.FwdURIMiss, Detail: "slice"})
		x.plain(http.StatusRequestedRangeNotSatisfiable, "intercloud-edge: range not satisfiable\n")
		return true
	case d.Status != http.StatusPartialContent || len(d.Ranges) != 1:
		return false
	}
	r := d.Ranges[0]
	// Every slice of the range, fetched before the answer starts when it
	// is the first, as it goes for the others.
	i0, i1 := r.Start/size, r.End()/size
	pieces := make([]*slice, i1-i0+1)
	if i0 == first.ent.sliceIndex(size) {
		pieces[0] = first
	} else if pieces[0], err = x.e.slice(x, i0, size, first); err != nil {
		return false
	}
	allHit := pieces[0].hit
	x.class = "miss"
	h := x.w.Header()
	for _, f := range pieces[0].ent.fields {
		h[f.name] = f.values
	}
	delete(h, "Content-Range")
	h.Set("Content-Range", "bytes "+strconv.FormatInt(r.Start, 10)+"-"+strconv.FormatInt(r.End(), 10)+"/"+strconv.FormatInt(first.total, 10))
	h["Content-Length"] = []string{strconv.FormatInt(r.Length, 10)}
	h["Age"] = ageValue(int64(pieces[0].ent.age(x.e.now()).Seconds()))
	cs := httpcache.CacheStatus{Fwd: httpcache.FwdURIMiss, FwdStatus: http.StatusPartialContent, Stored: true, Detail: "slice"}
	if allHit && i0 == i1 {
		x.class = "hit"
		cs = httpcache.CacheStatus{Hit: true}
	}
	x.status(cs)
	editHeader(h, x.d.headers.Response)
	x.w.WriteHeader(http.StatusPartialContent)
	for k := range pieces {
		i := i0 + int64(k)
		if pieces[k] == nil {
			if pieces[k], err = x.e.slice(x, i, size, first); err != nil {
				// The answer is under way: a cut, not a short body.
				x.e.log.Warn("slice fill failed mid-answer", "distribution", x.d.name, "path", x.r.URL.Path, "slice", i, "error", err)
				x.abort = true
				return true
			}
		}
		if !x.writeSlice(pieces[k], max(r.Start-i*size, 0), r.End()-i*size+1) {
			return true
		}
		pieces[k] = nil // written: let it go
	}
	return true
}

// writeSlice sends bytes [lo, min(hi, its length)) of a slice, from
// memory or from its file with sendfile; false when the answer cannot go
// on (a write failed, or the file is gone: then the client's connection
// is cut, as for a slice that cannot be fetched).
func (x *exchange) writeSlice(s *slice, lo, hi int64) bool {
	ent := s.ent
	if ent.disk == nil {
		hi = min(hi, int64(len(ent.body)))
		_, err := x.w.Write(ent.body[lo:hi])
		return err == nil
	}
	hi = min(hi, ent.size)
	f, err := ent.disk.d.s.OpenBody(ent.disk.o, lo)
	if err != nil {
		// Evicted or replaced since the lookup: the next asks again.
		x.e.tier.dropMem(ent)
		x.e.log.Warn("slice file gone mid-answer", "distribution", x.d.name, "path", x.r.URL.Path, "error", err)
		x.abort = true
		return false
	}
	defer f.Close()
	sent, err := x.w.ReadFrom(&io.LimitedReader{R: f, N: hi - lo})
	if err == nil && sent < hi-lo {
		x.abort = true // a short file: never a complete-looking answer
	}
	return err == nil && sent == hi-lo
}

// sliceIndex is which slice a slice entry holds, from its Content-Range.
func (e *entry) sliceIndex(size int64) int64 {
	start, _, _, _ := parseContentRange(e.header.Get("Content-Range"))
	return start / size
}

// rangeStart is the first byte of a "bytes=N-..." Range (0 for others:
// a suffix needs the length, which the first slice tells).
func rangeStart(v string) int64 {
	spec, ok := strings.CutPrefix(v, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0
	}
	a, _, ok := strings.Cut(strings.TrimSpace(spec), "-")
	n, err := strconv.ParseInt(a, 10, 64)
	if !ok || err != nil || n < 0 {
		return 0
	}
	return n
}

// parseContentRange reads "bytes first-last/total".
func parseContentRange(v string) (first, last, total int64, ok bool) {
	spec, found := strings.CutPrefix(v, "bytes ")
	r, t, found2 := strings.Cut(spec, "/")
	a, b, found3 := strings.Cut(r, "-")
	if !found || !found2 || !found3 {
		return 0, 0, 0, false
	}
	var e1, e2, e3 error
	first, e1 = strconv.ParseInt(a, 10, 64)
	last, e2 = strconv.ParseInt(b, 10, 64)
	total, e3 = strconv.ParseInt(t, 10, 64)
	if e1 != nil || e2 != nil || e3 != nil || first < 0 || last < first || total <= last {
		return 0, 0, 0, false
	}
	return first, last, total, true
}

// sliceKey names slice i of size bytes: a new cache.slice makes new
// keys, never a piece of another size read as this one.
func sliceKey(key string, size, i int64) string {
	return key + "\x00slice:" + strconv.FormatInt(size, 10) + ":" + strconv.FormatInt(i, 10)
}

// slice returns slice i of the request's object from the cache or the
// origin (one fetch per slice however many clients ask). like, when
// set, is a slice of the representation this one must match.
func (e *Edge) slice(x *exchange, i, size int64, like *slice) (*slice, error) {
	key := sliceKey(x.storeKey(), size, i)
	check := func(s *slice) (*slice, error) {
		if like != nil && (s.total != like.total || s.ent.validators.ETag != like.ent.validators.ETag ||
			!s.ent.validators.LastModified.Equal(like.ent.validators.LastModified)) {
			e.store.Del(key)
			return nil, errSliceMismatch
		}
		return s, nil
	}
	// A slice above the memory tier's limit lives on disk only: its
	// entry has the file, not the body.
	if ent, ok := e.store.Get(key); ok && ent.routed == x.member.id && (ent.body != nil || ent.disk != nil) {
		n := int64(len(ent.body))
		if ent.disk != nil {
			n = ent.size
		}
		first, last, total, ok := parseContentRange(ent.header.Get("Content-Range"))
		if ok && first == i*size && last-first+1 == n &&
			httpcache.Evaluate(ent.fresh, ent.age(e.now()), x.reqCC) == httpcache.Fresh {
			return check(&slice{ent: ent, total: total, hit: true})
		}
	}
	v, err, _ := e.flight.Do(key+"\x00"+uitoa(uint64(x.member.id)), func() (any, error) {
		return e.fetchSlice(x, key, i, size)
	})
	if err != nil {
		return nil, err
	}
	return check(v.(*slice))
}

// fetchSlice asks the origin for bytes [i*size, (i+1)*size) and stores
// the answer when it may be.
func (e *Edge) fetchSlice(x *exchange, key string, i, size int64) (*slice, error) {
	h := x.forwarded().Clone()
	start := i * size
	h.Set("Range", "bytes="+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(start+size-1, 10))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(x.r.Context()), fillTimeout)
	defer cancel()
	reqTime := e.now()
	resp, o, err := e.roundTrip(ctx, x, http.MethodGet, h, revalidation{}, http.NoBody, 0)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	first, last, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
	if resp.StatusCode != http.StatusPartialContent || !ok || first != start || (last != min(start+size, total)-1) {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("origin answered slice %d with %d %q", i, resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	body, err := readLimited(resp.Body, resp.ContentLength, size)
	if err != nil || int64(len(body)) != last-first+1 {
		return nil, fmt.Errorf("%w: slice %d from origin %s: %d bytes, %v", errOrigin, i, o.name, len(body), err)
	}
	now := e.now()
	removeHopByHop(resp.Header)
	if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
		resp.Header.Set("Date", now.UTC().Format(http.TimeFormat))
	}
	respCC, view, _ := httpcache.ResponseRules(resp.Header)
	// A slice is stored by the rules of the whole object's 200.
	reason := httpcache.Storable(http.MethodGet, h, x.reqCC, http.StatusOK, view, respCC,
		httpcache.StoreOptions{AllowSetCookie: x.b.cacheSetCookie, HasDefaultTTL: x.b.ttl.Default != nil})
	fresh := httpcache.ComputeFreshness(http.StatusOK, view, respCC, x.b.ttl)
	e.obsFolded(x, folds(resp), &fresh)
	ent := &entry{
		key: key, dist: x.d.name, path: x.r.URL.Path,
		status: http.StatusPartialContent, header: resp.Header, body: body,
		producer: o.id, routed: x.member.id, requestTime: reqTime, responseTime: now,
		initialAge: httpcache.InitialAge(resp.Header, reqTime, now), fresh: fresh,
	}
	ent.header.Del("Age")
	ent.finalize()
	names, _ := httpcache.VaryNames(ent.header)
	if reason == "" && len(names) == 0 && len(respCC.PrivateFields)+len(respCC.NoCacheFields) == 0 && fresh.Lifetime > 0 {
		e.store.Set(ent, ent.retention(e.keepValidated))
	}
	return &slice{ent: ent, total: total}, nil
}
