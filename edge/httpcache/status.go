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
	var b strings.Builder
	b.WriteString(s.Cache)
	if s.Hit {
		b.WriteString("; hit")
	}
	if s.Fwd != "" {
		b.WriteString("; fwd=")
		b.WriteString(s.Fwd)
	}
	if s.FwdStatus != 0 {
		b.WriteString("; fwd-status=")
		b.WriteString(strconv.Itoa(s.FwdStatus))
	}
	if s.Stored {
		b.WriteString("; stored")
	}
	if s.Collapsed {
		b.WriteString("; collapsed")
	}
	if s.HasTTL {
		b.WriteString("; ttl=")
		// Floor toward -inf so that a just-stale entry shows a negative ttl.
		secs := s.TTL / time.Second
		if s.TTL < 0 && s.TTL%time.Second != 0 {
			secs--
		}
		b.WriteString(strconv.FormatInt(int64(secs), 10))
	}
	if s.Detail != "" {
		b.WriteString("; detail=")
		if isToken(s.Detail) {
			b.WriteString(s.Detail)
		} else {
			b.WriteString(strconv.Quote(s.Detail))
		}
	}
	return b.String()
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
