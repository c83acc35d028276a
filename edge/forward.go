package edge

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/intercloud/intercloud/internal/httpsem"
)

// hopByHop are connection-level fields never forwarded (RFC 9110 §7.6.1).
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopByHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, f := range hopByHop {
		h.Del(f)
	}
}

// bodyFields travel with a request body whatever the behavior forwards.
var bodyFields = []string{"Content-Type", "Content-Length", "Content-Encoding", "Content-Language"}

// forwardedHeader builds the origin request's header: only what the
// behavior forwards (so nothing else can change the response, nor poison
// the cache), plus proxy fields.
func (b *behavior) forwardedHeader(r *http.Request, clientIP string) http.Header {
	out := http.Header{}
	if b.allHeaders {
		for k, v := range r.Header {
			out[k] = append([]string(nil), v...)
		}
		removeHopByHop(out)
		out.Del("Cookie")
		// Conditionals and ranges are the cache's own business on cached
		// behaviors; the caller adds them back for pass-through.
		for _, f := range httpsem.Fields {
			out.Del(f)
		}
		out.Del("X-Forwarded-For")
		out.Del("Forwarded")
		out.Del("Via")
		// Between edges only (tiers.go).
		delete(out, hdrHops)
		delete(out, hdrTier)
		delete(out, hdrProbe)
	} else {
		for _, k := range b.headers {
			if v, ok := r.Header[k]; ok {
				out[k] = append([]string(nil), v...)
			}
		}
	}
	if r.ContentLength != 0 || r.Body != nil && r.Body != http.NoBody {
		for _, k := range bodyFields {
			if v, ok := r.Header[k]; ok {
				out[k] = v
			}
		}
	}
	if c := b.cookieHeader(r); c != "" {
		out.Set("Cookie", c)
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	prior := r.Header.Values("X-Forwarded-For")
	xff := clientIP
	if len(prior) > 0 {
		xff = strings.Join(prior, ", ") + ", " + clientIP
	}
	out.Set("X-Forwarded-For", xff)
	out.Set("X-Forwarded-Proto", proto)
	out.Set("X-Forwarded-Host", r.Host)
	fwd := "for=" + forwardedNode(clientIP) + ";proto=" + proto
	if r.Host != "" {
		fwd += ";host=" + quoteIfNeeded(r.Host)
	}
	out.Add("Forwarded", fwd)
	via := r.Header.Values("Via")
	out["Via"] = append(append([]string(nil), via...), viaValue(r))
	if _, ok := out["User-Agent"]; !ok {
		// Without this net/http sends its own User-Agent.
		out["User-Agent"] = []string{""}
	}
	return out
}

func viaValue(r *http.Request) string {
	return strings.TrimPrefix(r.Proto, "HTTP/") + " intercloud-edge"
}

func forwardedNode(ip string) string {
	if strings.Contains(ip, ":") {
		return `"[` + ip + `]"`
	}
	return ip
}

func quoteIfNeeded(s string) string {
	if strings.ContainsAny(s, ":[]") {
		return `"` + s + `"`
	}
	return s
}

// cookieHeader keeps only the forwarded cookies, sorted by name.
func (b *behavior) cookieHeader(r *http.Request) string {
	if b.cookies.None() {
		return ""
	}
	if b.cookies.All {
		return strings.Join(r.Header.Values("Cookie"), "; ")
	}
	var keep []string
	for _, c := range r.Cookies() {
		if b.cookies.Includes(c.Name) {
			keep = append(keep, c.Name+"="+c.Value)
		}
	}
	sort.Strings(keep)
	return strings.Join(keep, "; ")
}

// forwardedQuery keeps the forwarded query parameters in their order.
func (b *behavior) forwardedQuery(raw string) string {
	if b.query.All || raw == "" {
		return raw
	}
	if b.query.None() {
		return ""
	}
	var keep []string
	for _, pair := range strings.Split(raw, "&") {
		name, _, _ := strings.Cut(pair, "=")
		if n, err := url.QueryUnescape(name); err == nil && b.query.Includes(n) {
			keep = append(keep, pair)
		}
	}
	return strings.Join(keep, "&")
}

// appendCacheKey appends the cache key to k: scheme, distribution, path
// and only what reaches the origin. Header values are the ones the origin
// gets: the client's, after the distribution's request header policy.
func (b *behavior) appendCacheKey(k []byte, d *dist, r *http.Request, query string) []byte {
	if r.TLS != nil {
		k = append(k, "https\x00"...)
	} else {
		k = append(k, "http\x00"...)
	}
	k = append(k, d.name...)
	k = append(k, 0)
	k = append(k, r.URL.EscapedPath()...)
	if query != "" {
		k = append(k, '?')
		if b.query.All {
			k = append(k, query...)
		} else {
			pairs := strings.Split(query, "&")
			sort.Strings(pairs)
			for i, p := range pairs {
				if i > 0 {
					k = append(k, '&')
				}
				k = append(k, p...)
			}
		}
	}
	for _, h := range b.headers {
		k = append(k, 0)
		k = append(k, h...)
		k = append(k, ':')
		if v, ok := d.reqSet[h]; ok {
			k = append(k, v...)
		} else if !d.reqRemove[h] {
			for i, v := range r.Header[h] {
				if i > 0 {
					k = append(k, ',')
				}
				k = append(k, v...)
			}
		}
	}
	if c := b.cookieHeader(r); c != "" && !d.reqRemove["Cookie"] {
		k = append(k, "\x00Cookie:"...)
		k = append(k, c...)
	}
	return k
}

// originURL joins the member's base with the request path and query.
func originURL(o *originRef, r *http.Request, query string) *url.URL {
	u := *o.base
	u.Path = strings.TrimSuffix(o.base.Path, "/") + r.URL.Path
	if o.base.RawPath != "" || r.URL.RawPath != "" {
		u.RawPath = strings.TrimSuffix(o.base.EscapedPath(), "/") + r.URL.EscapedPath()
	}
	u.RawQuery = query
	u.Fragment = ""
	return &u
}

func clientIP(r *http.Request) string {
	a := r.RemoteAddr
	// host:port with one colon and no brackets (IPv4) is what
	// SplitHostPort would split at that colon.
	if i := strings.IndexByte(a, ':'); i >= 0 && strings.IndexByte(a[i+1:], ':') < 0 && strings.IndexAny(a, "[]") < 0 {
		return a[:i]
	}
	host, _, err := net.SplitHostPort(a)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientBody is a client's request body on its way to the origin; it
// remembers a read error so that a body whose framing broke is answered
// 400 rather than blamed on the origin. The transport reads it from its
// own goroutine.
type clientBody struct {
	io.ReadCloser
	mu  sync.Mutex
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
	}
	return n, err
}

// failed is the error reading the client's body, if any; nil b is none.
func (b *clientBody) failed() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
