// Package httpcache holds the HTTP caching rules of RFC 9111 (freshness,
// age, storability, Vary, conditional requests, ranges), RFC 5861 (stale
// extensions) and RFC 9211 (Cache-Status) as pure functions, so they can be
// tested by tables and fuzzed without a network.
package httpcache

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxDelta is the largest delta-seconds we keep (RFC 9111 §1.2.2: a cache
// that cannot represent a larger value uses 2^31).
const maxDelta = 2147483648

// CacheControl is a parsed Cache-Control field (request or response). A
// negative duration means the directive is absent.
type CacheControl struct {
	MaxAge, SMaxAge      time.Duration
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
	MaxStale             time.Duration // request; MaxStaleAny when given without value
	MinFresh             time.Duration // request

	NoStore, NoCache, Private, Public bool
	MustRevalidate, ProxyRevalidate   bool
	MustUnderstand, NoTransform       bool
	Immutable, OnlyIfCached           bool
	HasMaxStale                       bool
	// NoCacheFields / PrivateFields hold the qualified forms' field names.
	NoCacheFields, PrivateFields []string
}

// MaxStaleAny is MaxStale when the client accepts any staleness.
const MaxStaleAny = time.Duration(maxDelta) * time.Second

// Absent reports whether a duration directive was not given.
func Absent(d time.Duration) bool { return d < 0 }

// ParseCacheControl parses every field line of Cache-Control. It never
// fails: a directive with an invalid argument is handled the safe way
// (an invalid max-age or s-maxage counts as 0, i.e. stale) and reported
// in the returned error so that callers can log it.
func ParseCacheControl(lines []string) (CacheControl, error) {
	cc := CacheControl{MaxAge: -1, SMaxAge: -1, StaleWhileRevalidate: -1, StaleIfError: -1, MaxStale: -1, MinFresh: -1}
	if len(lines) == 0 {
		return cc, nil // most requests
	}
	var seen uint32
	var errs []error
	for _, line := range lines {
		for _, d := range splitDirectives(line) {
			name, arg, quoted, hasArg := splitDirective(d)
			if name == "" {
				continue
			}
			// RFC 9111 §4.2.1: with duplicate directives the first one counts.
			if bit := directiveBit(name); bit != 0 {
				if seen&bit != 0 {
					continue
				}
				seen |= bit
			}
			delta := func() time.Duration {
				if !hasArg {
					errs = append(errs, fmt.Errorf("cache-control %s: missing value", name))
					return 0
				}
				v, err := parseDelta(arg)
				if err != nil {
					errs = append(errs, fmt.Errorf("cache-control %s: %w", name, err))
					return 0
				}
				return v
			}
			switch name {
			case "max-age":
				cc.MaxAge = delta()
			case "s-maxage":
				cc.SMaxAge = delta()
			case "stale-while-revalidate":
				cc.StaleWhileRevalidate = delta()
			case "stale-if-error":
				cc.StaleIfError = delta()
			case "min-fresh":
				cc.MinFresh = delta()
			case "max-stale":
				cc.HasMaxStale = true
				if hasArg {
					cc.MaxStale = delta()
				} else {
					cc.MaxStale = MaxStaleAny
				}
			case "no-store":
				cc.NoStore = true
			case "no-cache":
				cc.NoCache = true
				if hasArg && quoted {
					cc.NoCacheFields = fieldNames(arg)
				}
			case "private":
				cc.Private = true
				if hasArg && quoted {
					cc.PrivateFields = fieldNames(arg)
				}
			case "public":
				cc.Public = true
			case "must-revalidate":
				cc.MustRevalidate = true
			case "proxy-revalidate":
				cc.ProxyRevalidate = true
			case "must-understand":
				cc.MustUnderstand = true
			case "no-transform":
				cc.NoTransform = true
			case "immutable":
				cc.Immutable = true
			case "only-if-cached":
				cc.OnlyIfCached = true
			}
		}
	}
	return cc, errors.Join(errs...)
}

var directives = []string{"max-age", "s-maxage", "stale-while-revalidate", "stale-if-error", "min-fresh", "max-stale",
	"no-store", "no-cache", "private", "public", "must-revalidate", "proxy-revalidate", "must-understand", "no-transform",
	"immutable", "only-if-cached"}

// directiveBit numbers the known directives for duplicate detection
// without allocating.
func directiveBit(name string) uint32 {
	for i, d := range directives {
		if d == name {
			return 1 << i
		}
	}
	return 0
}

// parseDelta reads delta-seconds; quoted forms are accepted (RFC 9111 §5.2).
func parseDelta(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty delta-seconds")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("invalid delta-seconds %q", s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxDelta {
		n = maxDelta
	}
	return time.Duration(n) * time.Second, nil
}

// splitDirectives splits on commas outside quoted strings.
func splitDirectives(s string) []string {
	var out []string
	start, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start <= len(s) {
		out = append(out, s[start:])
	}
	return out
}

func splitDirective(d string) (name, arg string, quoted, hasArg bool) {
	d = strings.TrimSpace(d)
	name, arg, hasArg = strings.Cut(d, "=")
	name = strings.ToLower(strings.TrimSpace(name))
	arg = strings.TrimSpace(arg)
	if len(arg) >= 2 && arg[0] == '"' && arg[len(arg)-1] == '"' {
		quoted = true
		arg = unquote(arg[1 : len(arg)-1])
	}
	return name, arg, quoted, hasArg
}

func unquote(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func fieldNames(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, strings.ToLower(f))
		}
	}
	return out
}
