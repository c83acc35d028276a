package httpcache

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// understood lists the final statuses this cache knows the semantics of
// (for must-understand, RFC 9111 §5.2.2.3).
var understood = map[int]bool{200: true, 203: true, 204: true, 300: true, 301: true, 302: true, 303: true, 307: true, 308: true,
	404: true, 405: true, 410: true, 414: true, 451: true, 501: true}

// StoreOptions are the behavior's switches that bend the defaults.
type StoreOptions struct {
	// AllowSetCookie shares responses that set cookies.
	AllowSetCookie bool
	// HasDefaultTTL: the distribution's default TTL is a cache-control
	// extension that allows storing without explicit freshness.
	HasDefaultTTL bool
}

// Storable implements RFC 9111 §3 for a shared cache. It returns "" when
// the response may be stored, else the reason it may not.
func Storable(method string, reqH http.Header, reqCC CacheControl, status int, respH http.Header, respCC CacheControl, o StoreOptions) string {
	switch {
	case method != http.MethodGet:
		return "method"
	case status < 200 || status == 206 || status == 304:
		return "status"
	case reqCC.NoStore:
		return "request no-store"
	case respCC.MustUnderstand && !understood[status]:
		return "must-understand"
	case respCC.NoStore && !(respCC.MustUnderstand && understood[status]):
		return "no-store"
	case respCC.Private && len(respCC.PrivateFields) == 0:
		// The qualified form only keeps its fields out of the cache
		// (StripQualified); the rest may be shared.
		return "private"
	case reqH.Get("Authorization") != "" && !respCC.Public && Absent(respCC.SMaxAge) && !respCC.MustRevalidate:
		return "authorization"
	case len(respH.Values("Set-Cookie")) > 0 && !o.AllowSetCookie:
		return "set-cookie"
	}
	if _, star := VaryNames(respH); star {
		return "vary-star"
	}
	if respCC.Public || !Absent(respCC.SMaxAge) || !Absent(respCC.MaxAge) || len(respH.Values("Expires")) > 0 ||
		heuristicStatus[status] || respCC.NoCache || o.HasDefaultTTL {
		return ""
	}
	return "no-freshness"
}

// StripQualified removes the fields named by qualified private="…" and
// no-cache="…" from a response about to be stored (RFC 9111 §5.2.2.4,
// §5.2.2.7): a shared cache must not hand them out again.
func StripQualified(h http.Header, cc CacheControl) {
	for _, f := range cc.PrivateFields {
		h.Del(f)
	}
	for _, f := range cc.NoCacheFields {
		h.Del(f)
	}
}

// HasValidator reports whether a stored response can be revalidated.
func HasValidator(h http.Header) bool {
	return h.Get("ETag") != "" || h.Get("Last-Modified") != ""
}

func firstListItem(s string) string {
	if i := strings.IndexByte(s, ','); i >= 0 {
		return s[:i]
	}
	return s
}

func trimOWS(s string) string { return strings.Trim(s, " \t") }

// ResponseRules returns the directives that govern this cache and the
// header view freshness and storability read. CDN-Cache-Control (RFC
// 9213), when present and valid, replaces both Cache-Control and Expires
// for a CDN; an invalid one is ignored as a whole (and reported in err).
func ResponseRules(h http.Header) (CacheControl, http.Header, error) {
	var cdnErr error
	if v := h.Values("Cdn-Cache-Control"); len(v) > 0 {
		cc, err := ParseCDNCacheControl(v)
		if err == nil {
			view := h.Clone()
			view.Del("Expires")
			view.Del("Cache-Control")
			return cc, view, nil
		}
		cdnErr = fmt.Errorf("ignored: %w", err)
	}
	cc, err := ParseCacheControl(h.Values("Cache-Control"))
	return cc, h, errors.Join(cdnErr, err)
}
