package edge

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/edge/httpcache"
)

// errorPage replaces an error answer with the distribution's page, fetched
// from the origin of the behavior matching the page's path and kept in
// cache for the page's TTL (rendered; 0 keeps it out of the cache). If the
// page cannot be had, the client gets a plain error of the original status.
// The status sent is the page's responseCode, which rendering fills with its
// status when unset.
func (x *exchange) errorPage(ep config.ErrorPage, status int) {
	code := ep.ResponseCode
	page := x.e.loadErrorPage(x, ep)
	h := x.w.Header()
	for _, k := range []string{"Content-Length", "Content-Range", "Etag", "Last-Modified", "Content-Encoding", "Accept-Ranges", "Age", "Expires"} {
		h.Del(k)
	}
	if page == nil {
		x.plain(code, strconv.Itoa(status)+" "+http.StatusText(status)+"\n")
		return
	}
	h.Set("Content-Type", page.header.Get("Content-Type"))
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/html; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(page.body)))
	editHeader(h, x.d.headers.Response)
	x.w.WriteHeader(code)
	if x.r.Method != http.MethodHead {
		x.w.Write(page.body)
	}
}

func (e *Edge) loadErrorPage(x *exchange, ep config.ErrorPage) *entry {
	b := x.d.match(ep.Path)
	if b == nil {
		return nil
	}
	// The page is its member's, like any object: a switch shows the new
	// member's page at once, and during a canary each member's page is
	// kept apart.
	m := b.target.primary(x.clientIP)
	key := "errorpage\x00" + x.d.name + "\x00" + ep.Path + "\x00" + uitoa(uint64(m.id))
	if ent, ok := e.store.Get(key); ok && ent.age(e.now()) < ent.fresh.Lifetime {
		return ent
	}
	v, _, _ := e.flight.Do(key, func() (any, error) {
		px := *x
		px.b, px.member = b, m
		px.r = x.r.Clone(context.WithoutCancel(x.r.Context()))
		px.r.URL = &url.URL{Path: ep.Path}
		px.query = ""
		ctx, cancel := context.WithTimeout(context.WithoutCancel(x.r.Context()), 10*time.Second)
		defer cancel()
		h := http.Header{"Via": {viaValue(x.r)}, "User-Agent": {""}}
		resp, o, err := e.roundTrip(ctx, &px, http.MethodGet, h, revalidation{}, http.NoBody, 0)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, nil
		}
		body, err := readLimited(resp.Body, resp.ContentLength, min(e.maxObject.Load(), 1<<20))
		if err != nil || int64(len(body)) > min(e.maxObject.Load(), 1<<20) {
			return nil, err
		}
		ttl := ep.TTL.D()
		now := e.now()
		ent := &entry{key: key, dist: x.d.name, path: ep.Path, producer: o.id, routed: m.id, status: 200, header: resp.Header, body: body,
			requestTime: now, responseTime: now, fresh: httpcache.Freshness{Lifetime: ttl}}
		ent.finalize()
		e.store.Set(ent, ttl)
		return ent, nil
	})
	ent, _ := v.(*entry)
	return ent
}
