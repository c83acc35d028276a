package httpcache

import (
	"net/http"
	"time"
)

// TTLPolicy is a distribution's or behavior's CloudFront-style TTL: Default
// replaces the heuristic when the origin gives no explicit freshness, and
// explicit origin lifetimes are clamped into [Min, Max]. The stale windows
// apply when the origin's Cache-Control does not name them. nil means unset.
type TTLPolicy struct {
	Default, Min, Max                  *time.Duration
	StaleWhileRevalidate, StaleIfError *time.Duration
}

// Freshness is what a stored response may be used for.
type Freshness struct {
	Lifetime time.Duration
	// Source says where Lifetime came from: s-maxage, max-age, expires,
	// default or heuristic.
	Source string
	// AlwaysRevalidate: no-cache; the entry is never served without a
	// successful revalidation.
	AlwaysRevalidate bool
	// NoStale forbids serving the entry stale (must-revalidate,
	// proxy-revalidate, s-maxage in a shared cache).
	NoStale bool
	// Stale windows after Lifetime (RFC 5861).
	StaleWhileRevalidate, StaleIfError time.Duration
}

// ErrorTTL caps the default TTL of error responses (status 400 and above)
// that carry no explicit freshness of their own.
const ErrorTTL = 10 * time.Second

// heuristicStatus lists the statuses RFC 9110 §15.1 calls heuristically
// cacheable.
var heuristicStatus = map[int]bool{200: true, 203: true, 204: true, 206: true, 300: true, 301: true, 308: true, 404: true, 405: true, 410: true, 414: true, 501: true}

// HeuristicallyCacheable reports whether a status may get heuristic freshness.
func HeuristicallyCacheable(status int) bool { return heuristicStatus[status] }

// ComputeFreshness implements RFC 9111 §4.2.1 for a shared cache with the
// policy's default and clamp. h must carry a Date (the cache adds one when
// the origin did not).
func ComputeFreshness(status int, h http.Header, cc CacheControl, p TTLPolicy) Freshness {
	// Qualified no-cache="F" only forbids reusing F without revalidation;
	// StripQualified removes F from what is stored.
	f := Freshness{AlwaysRevalidate: cc.NoCache && len(cc.NoCacheFields) == 0}
	explicit := true
	switch {
	case !Absent(cc.SMaxAge):
		f.Lifetime, f.Source = cc.SMaxAge, "s-maxage"
	case !Absent(cc.MaxAge):
		f.Lifetime, f.Source = cc.MaxAge, "max-age"
	case len(h.Values("Expires")) > 0:
		f.Source = "expires"
		// An invalid Expires (such as "0", or a date with a one-digit
		// hour or doubled spaces) means already expired (RFC 9111 §5.3).
		// Several Expires lines are invalid too.
		if v := h.Values("Expires"); len(v) == 1 {
			exp, ok := ParseHTTPDate(v[0])
			date := dateOf(h)
			if ok && !date.IsZero() && exp.After(date) {
				f.Lifetime = exp.Sub(date)
			}
		}
	default:
		explicit = false
		switch {
		case p.Default != nil && status >= 400:
			// An error without explicit freshness is kept only briefly
			// (CloudFront's error caching minimum TTL), never for the
			// distribution's default, which is meant for content.
			f.Lifetime, f.Source = min(*p.Default, ErrorTTL), "default"
		case p.Default != nil:
			f.Lifetime, f.Source = *p.Default, "default"
		case heuristicStatus[status] || cc.Public:
			f.Source = "heuristic"
			date := dateOf(h)
			if lm, err := http.ParseTime(h.Get("Last-Modified")); err == nil && !date.IsZero() && date.After(lm) {
				f.Lifetime = date.Sub(lm) / 10
			}
		}
	}
	if explicit && p.Min != nil && f.Lifetime < *p.Min {
		f.Lifetime = *p.Min
	}
	if p.Max != nil && f.Lifetime > *p.Max {
		f.Lifetime = *p.Max
	}
	f.NoStale = cc.MustRevalidate || cc.ProxyRevalidate || !Absent(cc.SMaxAge)
	if !f.NoStale {
		f.StaleWhileRevalidate = pick(cc.StaleWhileRevalidate, p.StaleWhileRevalidate)
		f.StaleIfError = pick(cc.StaleIfError, p.StaleIfError)
	}
	return f
}

func pick(origin time.Duration, def *time.Duration) time.Duration {
	if !Absent(origin) {
		return origin
	}
	if def != nil {
		return *def
	}
	return 0
}

func dateOf(h http.Header) time.Time {
	t, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return time.Time{}
	}
	return t
}

// InitialAge is corrected_initial_age of RFC 9111 §4.2.3: requestTime is
// when the cache sent the request, responseTime when the response arrived.
func InitialAge(h http.Header, requestTime, responseTime time.Time) time.Duration {
	var apparent time.Duration
	if date := dateOf(h); !date.IsZero() && responseTime.After(date) {
		apparent = responseTime.Sub(date)
	}
	var ageValue time.Duration
	if v := h.Values("Age"); len(v) > 0 {
		// An invalid Age is ignored rather than trusted.
		if d, err := parseDelta(trimOWS(firstListItem(v[0]))); err == nil {
			ageValue = d
		}
	}
	corrected := ageValue + responseTime.Sub(requestTime)
	if corrected < 0 {
		corrected = ageValue
	}
	return max(apparent, corrected)
}

// CurrentAge adds the time the entry has been resident.
func CurrentAge(initial time.Duration, responseTime, now time.Time) time.Duration {
	if now.Before(responseTime) {
		return initial
	}
	return initial + now.Sub(responseTime)
}

// State is how a stored response may be used for one request.
type State int

const (
	// Fresh may be served as is.
	Fresh State = iota
	// StaleRevalidateAsync may be served while a refresh runs (RFC 5861).
	StaleRevalidateAsync
	// StaleServable is stale but the client accepts it (max-stale).
	StaleServable
	// MustRevalidate must be validated with the origin before use.
	MustRevalidate
)

func (s State) String() string {
	switch s {
	case Fresh:
		return "fresh"
	case StaleRevalidateAsync:
		return "stale-while-revalidate"
	case StaleServable:
		return "stale-servable"
	default:
		return "must-revalidate"
	}
}

// Evaluate decides how an entry of the given age may answer a request
// with the request's Cache-Control (RFC 9111 §4.2, §5.2.1).
func Evaluate(f Freshness, age time.Duration, req CacheControl) State {
	if f.AlwaysRevalidate || req.NoCache {
		return MustRevalidate
	}
	if !Absent(req.MaxAge) && age > req.MaxAge {
		return MustRevalidate
	}
	remaining := f.Lifetime - age
	if !Absent(req.MinFresh) && remaining < req.MinFresh {
		return MustRevalidate
	}
	if remaining > 0 {
		return Fresh
	}
	if f.NoStale {
		return MustRevalidate
	}
	staleFor := -remaining
	if req.HasMaxStale && staleFor <= req.MaxStale {
		return StaleServable
	}
	if f.StaleWhileRevalidate > 0 && staleFor <= f.StaleWhileRevalidate && Absent(req.MaxAge) {
		return StaleRevalidateAsync
	}
	return MustRevalidate
}

// ServeStaleOnError reports whether a stale entry may answer when the
// origin failed (RFC 5861 §4; a request stale-if-error also allows it).
// must-revalidate, proxy-revalidate and s-maxage forbid it (NoStale), and
// so does no-cache: such a response is never used without a successful
// revalidation (RFC 9111 §5.2.2.4).
func ServeStaleOnError(f Freshness, age time.Duration, req CacheControl) bool {
	if f.NoStale || f.AlwaysRevalidate {
		return false
	}
	staleFor := age - f.Lifetime
	window := f.StaleIfError
	if !Absent(req.StaleIfError) {
		window = req.StaleIfError
	}
	return staleFor <= window && window > 0
}
