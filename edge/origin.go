package edge

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
)

const (
	// passiveFailures consecutive failures mark a member down for passiveHold.
	passiveFailures = 3
	passiveHold     = 10 * time.Second
)

// clientPool keeps one keep-alive client per distinct origin setting, so a
// config swap that does not change an origin keeps its warm connections.
type clientPool struct {
	mu      sync.Mutex
	clients map[poolKey]*http.Client
	// roots replaces the system's CA pool for HTTPS origins (tests).
	roots *x509.CertPool
}

type poolKey struct {
	connect, read time.Duration
	scheme, host  string
	tos           int // the DSCP mark of a gateway link (linkpaths.go); 0: none
}

func newClientPool() *clientPool { return &clientPool{clients: map[poolKey]*http.Client{}} }

// client is the client for an origin's timeouts as rendered (config fills
// connectTimeout and readTimeout). A zero timeout is no limit, as in
// net/http: a snapshot that skipped rendering waits, it does not get a
// second set of defaults from here.
func (p *clientPool) client(o config.Origin) *http.Client { return p.clientTOS(o, 0) }

// clientTOS is client whose connections carry tos in their IP header
// (IPv4 TOS, IPv6 traffic class): the mark of a gateway link.
func (p *clientPool) clientTOS(o config.Origin, tos int) *http.Client {
	connect, read := o.ConnectTimeout.D(), o.ReadTimeout.D()
	k := poolKey{connect: connect, read: read, host: o.URL, tos: tos}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[k]; ok {
		return c
	}
	// The edge reads response heads as they arrive for folded fields
	// (obsfold.go), over TLS too: it dials both kinds itself, marked with
	// the gateway link's TOS when the client is for one (linkpaths.go).
	plain, secure := dialers(connect, p.roots, tos)
	tr := &http.Transport{
		DialContext:           plain,
		DialTLSContext:        secure,
		ResponseHeaderTimeout: read,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		// The cache keeps what the origin sent; compression is the
		// origin's and the client's business.
		DisableCompression: true,
	}
	c := &http.Client{
		Transport: tr,
		// Redirects go back to the client, not followed by the edge.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	p.clients[k] = c
	return c
}

func (p *clientPool) closeIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.clients {
		c.CloseIdleConnections()
	}
}

// health combines the controller's verdicts with the edge's own passive view.
type health struct {
	mu      sync.Mutex
	fails   map[string]int
	down    map[string]time.Time
	control map[string]status.OriginHealth
	now     func() time.Time
}

func newHealth() *health {
	return &health{fails: map[string]int{}, down: map[string]time.Time{}, now: time.Now}
}

func (h *health) setControl(m map[string]status.OriginHealth) {
	h.mu.Lock()
	h.control = m
	h.mu.Unlock()
}

func (h *health) healthy(key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.control[key]; ok && !v.Healthy {
		return false
	}
	if until, ok := h.down[key]; ok {
		if h.now().Before(until) {
			return false
		}
		delete(h.down, key)
		h.fails[key] = 0
	}
	return true
}

func (h *health) result(key string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ok {
		delete(h.fails, key)
		return
	}
	h.fails[key]++
	if h.fails[key] >= passiveFailures {
		h.down[key] = h.now().Add(passiveHold)
	}
}

// memberID names an origin as the producer of cached copies: two
// origins have one id only when they are the same server as configured
// (distribution, name, URL and Host header), so that a copy is
// revalidated only with the server that made it. Ids outlive tables: an
// entry stored under one revision is compared under the next.
type memberID uint32

// memberIDs hands out memberIDs for the edge's lifetime.
type memberIDs struct {
	mu    sync.Mutex
	ids   map[memberKey]memberID
	names []memberKey // by id-1: the disk tier stores members by name
}

type memberKey struct{ dist, name, url, host string }

func newMemberIDs() *memberIDs { return &memberIDs{ids: map[memberKey]memberID{}} }

// id is the origin's id; 0 is never handed out, so that an entry made
// without an origin matches none.
func (m *memberIDs) id(dist, name, url, host string) memberID {
	k := memberKey{dist, name, url, host}
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.ids[k]
	if !ok {
		id = memberID(len(m.ids) + 1)
		m.ids[k] = id
		m.names = append(m.names, k)
	}
	return id
}

// name is the member an id was handed out for.
func (m *memberIDs) name(id memberID) (memberKey, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id == 0 || int(id) > len(m.names) {
		return memberKey{}, false
	}
	return m.names[id-1], true
}

// primary is the member a client is routed to: the canary for a stable
// share of client addresses, else the active one. Health is not looked
// at: it picks a fallback for a fetch, not what the client is meant to
// get.
func (t *target) primary(clientIP string) *originRef {
	if t.canary != nil && clientBucket(clientIP) < t.weight {
		return t.canary
	}
	return t.members[t.active]
}

// isCanary: requests routed to m are the canary's, and cached apart from
// the active member's (see appendMemberKey).
func (t *target) isCanary(m *originRef) bool {
	return t.canary != nil && m == t.canary && m != t.members[t.active]
}

// order lists the members to try: the client's primary, then the next
// healthy member. Unhealthy members are skipped unless nothing else is
// left.
func (t *target) order(primary *originRef, h *health) []*originRef {
	out := make([]*originRef, 0, 2)
	if h.healthy(primary.key) {
		out = append(out, primary)
	}
	for i := range t.members {
		m := t.members[(t.active+i)%len(t.members)]
		if len(out) == 2 {
			break
		}
		if m != primary && h.healthy(m.key) {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		out = append(out, primary)
	}
	return out
}

// clientBucket maps a client address to 0..99, stable across requests
// and releases: FNV-1a (32 bit) of the address, written out because
// hash/fnv costs a hit an allocation.
func clientBucket(ip string) int {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for i := 0; i < len(ip); i++ {
		h ^= uint32(ip[i])
		h *= prime32
	}
	return int(h % 100)
}

// errOrigin wraps a failure to get a response from every tried member.
var errOrigin = errors.New("origin unavailable")

// isTimeout tells 504 from 502.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
