package edge

import (
	"context"
	"errors"
	"hash/fnv"
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
}

type poolKey struct {
	connect, read time.Duration
	scheme, host  string
}

func newClientPool() *clientPool { return &clientPool{clients: map[poolKey]*http.Client{}} }

// client is the client for an origin's timeouts as rendered (config fills
// connectTimeout and readTimeout). A zero timeout is no limit, as in
// net/http: a snapshot that skipped rendering waits, it does not get a
// second set of defaults from here.
func (p *clientPool) client(o config.Origin) *http.Client {
	connect, read := o.ConnectTimeout.D(), o.ReadTimeout.D()
	k := poolKey{connect: connect, read: read, host: o.URL}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[k]; ok {
		return c
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   connect,
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

// order lists the members to try: the client's primary (the canary for a
// stable share of client addresses, else active), then the next healthy
// member. Unhealthy members are skipped unless nothing else is left.
func (t *target) order(clientIP string, h *health) []*originRef {
	primary := t.members[t.active]
	if t.canary != nil && clientBucket(clientIP) < t.weight {
		primary = t.canary
	}
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

// clientBucket maps a client address to 0..99, stable across requests.
func clientBucket(ip string) int {
	f := fnv.New32a()
	f.Write([]byte(ip))
	return int(f.Sum32() % 100)
}

// errOrigin wraps a failure to get a response from every tried member.
var errOrigin = errors.New("origin unavailable")

// isTimeout tells 504 from 502.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
