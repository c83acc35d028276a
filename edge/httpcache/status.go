package httpcache

import (
	"strconv"
	"strings"
	"time"
)

// Forward reasons of RFC 9211 §2.2.
const (
	FwdBypass  = "bypass"
	FwdMethod  = "method"
	FwdURIMiss = "uri-miss"
	FwdVary    = "vary-miss"
	FwdMiss    = "miss"
	FwdRequest = "request"
	FwdStale   = "stale"
)

// CacheStatus is one Cache-Status list member (RFC 9211).
type CacheStatus struct {
	Cache     string
	Hit       bool
	Fwd       string
	FwdStatus int
	TTL       time.Duration
	HasTTL    bool
	Stored    bool
	Collapsed bool
	Detail    string
}

// String renders the member, e.g. `intercloud-edge; hit; ttl=30`.
func (s CacheStatus) String() string {
	var buf [128]byte
	return string(s.AppendTo(buf[:0]))
}

// AppendTo appends the member as String renders it to b.
func (s CacheStatus) AppendTo(b []byte) []byte {
	b = append(b, s.Cache...)
	if s.Hit {
		b = append(b, "; hit"...)
	}
	if s.Fwd != "" {
		b = append(b, "; fwd="...)
		b = append(b, s.Fwd...)
	}
	if s.FwdStatus != 0 {
		b = append(b, "; fwd-status="...)
		b = strconv.AppendInt(b, int64(s.FwdStatus), 10)
	}
	if s.Stored {
		b = append(b, "; stored"...)
	}
	if s.Collapsed {
		b = append(b, "; collapsed"...)
	}
	if s.HasTTL {
		b = append(b, "; ttl="...)
		// Floor toward -inf so that a just-stale entry shows a negative ttl.
		secs := s.TTL / time.Second
		if s.TTL < 0 && s.TTL%time.Second != 0 {
			secs--
		}
		b = strconv.AppendInt(b, int64(secs), 10)
	}
	if s.Detail != "" {
		b = append(b, "; detail="...)
		if isToken(s.Detail) {
			b = append(b, s.Detail...)
		} else {
			b = strconv.AppendQuote(b, s.Detail)
		}
	}
	return b
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != "" && !(s[0] >= '0' && s[0] <= '9')
}
