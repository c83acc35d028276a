package vpn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"

	"github.com/intercloud/intercloud/config"
)

// Options configure a Manager.
type Options struct {
	// Node is the gateway node whose ends of vpn links we run.
	Node     string
	Logger   *slog.Logger
	Registry prometheus.Registerer // nil: no metrics
	// OnPeerState is called whenever a peer goes up or down (and once for
	// each new peer), never concurrently with itself. The gateway uses it
	// to drop the BGP session over a dead tunnel at once. It must not call
	// back into the Manager's Apply or Close.
	OnPeerState func(PeerState)
	// CheckInterval is how often peers are polled (default 500ms).
	CheckInterval time.Duration
}

// Manager runs the tunnels of one node. It works in the network namespace
// of the process that created it: wireguard-go opens sockets on other OS
// threads later, so a process must never switch namespaces around it.
type Manager struct {
	opts    Options
	log     *slog.Logger
	metrics *collector

	mu      sync.Mutex
	h       *netlink.Handle
	tunnels map[string]*tunnel // by interface name
	states  map[string]PeerState
	errs    map[string]string // last read error per interface
	applied bool
	closed  bool

	cbMu sync.Mutex // serializes OnPeerState
	stop chan struct{}
	done chan struct{}
}

// New starts a Manager with no tunnels; Apply gives it some.
func New(o Options) (*Manager, error) {
	if o.Node == "" {
		return nil, errors.New("vpn: no node name")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = 500 * time.Millisecond
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("vpn: netlink: %w", err)
	}
	m := &Manager{
		opts:    o,
		log:     o.Logger.With("role", "vpn"),
		h:       h,
		tunnels: map[string]*tunnel{},
		states:  map[string]PeerState{},
		errs:    map[string]string{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if o.Registry != nil {
		m.metrics = newCollector(m)
		if err := o.Registry.Register(m.metrics); err != nil {
			h.Close()
			return nil, fmt.Errorf("vpn: register metrics: %w", err)
		}
	}
	go m.monitor()
	return m, nil
}

// Apply makes the node's tunnels match the site: Prepare, then Commit.
// Everything is checked and every key read before anything changes, so a
// bad config or an unreadable key leaves the tunnels as they were.
func (m *Manager) Apply(ctx context.Context, site *config.Site) error {
	want, err := FromSite(site, m.opts.Node)
	if err != nil {
		return err
	}
	p, err := m.Prepare(ctx, want)
	if err != nil {
		return err
	}
	return m.Commit(ctx, p)
}

// Ready is nil once the last Apply configured every tunnel.
func (m *Manager) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	if !m.applied {
		return errors.New("vpn: tunnels not configured")
	}
	return nil
}

// Close removes every tunnel and stops the monitor.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.stop)
	for name, t := range m.tunnels {
		t.close()
		delete(m.tunnels, name)
	}
	m.mu.Unlock()
	select {
	case <-m.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if m.metrics != nil {
		m.opts.Registry.Unregister(m.metrics)
	}
	m.h.Close()
	return nil
}

// rotatingPoll is the poll interval while a key change, a heal or a key
// rotation waits for its handshake: the switch to the new key (and the
// peer's health) follows the handshake this closely.
const rotatingPoll = 2 * time.Millisecond

func (m *Manager) monitor() {
	defer close(m.done)
	timer := time.NewTimer(m.opts.CheckInterval)
	defer timer.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-timer.C:
			if m.poll(now) {
				timer.Reset(rotatingPoll)
			} else {
				timer.Reset(m.opts.CheckInterval)
			}
		}
	}
}

// poll reads every tunnel's peer and reports the changes. It returns
// whether a tunnel waits for a handshake or a key rotation (tunnel.pollFast).
func (m *Manager) poll(now time.Time) (fast bool) {
	var changed []PeerState
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	for name, t := range m.tunnels {
		d, err := t.get()
		if err != nil {
			m.errs[name] = err.Error()
			continue
		}
		delete(m.errs, name)
		cur := findPeer(d.Peers, t.cfg.Peer)
		t.pushHandshake(now, cur)
		t.finishRotation(now, cur)
		// Health follows the key that carries the traffic: the old one
		// until a rotation of the peer's key completes.
		p := cur
		if !t.oldPeer.IsZero() {
			p = findPeer(d.Peers, t.oldPeer)
		}
		if t.health.observe(now, p, t.cfg.Keepalive) {
			if t.health.up {
				t.log.Info("peer up", "endpoint", p.Endpoint)
			} else {
				t.log.Warn("peer down", "reason", t.health.reason)
			}
			m.states[name] = m.peerState(t, p)
			changed = append(changed, m.states[name])
		} else {
			m.states[name] = m.peerState(t, p)
		}
		fast = fast || t.pollFast()
	}
	m.mu.Unlock()
	m.notify(changed)
	return fast
}

// findPeer returns the peer with key k; a peer someone removed through the
// UAPI (wg set ... remove) shows as one that never handshaked.
func findPeer(peers []uapiPeer, k Key) uapiPeer {
	if i := slices.IndexFunc(peers, func(p uapiPeer) bool { return p.PublicKey == k }); i >= 0 {
		return peers[i]
	}
	return uapiPeer{PublicKey: k}
}

func (m *Manager) peerState(t *tunnel, p uapiPeer) PeerState {
	return PeerState{
		Interface:     t.cfg.Name,
		Link:          t.cfg.Link,
		Node:          t.cfg.PeerNode,
		PublicKey:     t.cfg.Peer.String(),
		Address:       t.cfg.PeerAddr(),
		Endpoint:      p.Endpoint,
		AllowedIPs:    p.AllowedIPs,
		Up:            t.health.up,
		Reason:        t.health.reason,
		Since:         t.health.since,
		LastHandshake: p.LastHandshake,
		LastReceive:   nonZeroIf(t.health.rx > 0, t.health.rxAt),
		RxBytes:       p.RxBytes,
		TxBytes:       p.TxBytes,
		Keepalive:     Seconds(p.Keepalive),
	}
}

func nonZeroIf(ok bool, t time.Time) time.Time {
	if !ok {
		return time.Time{}
	}
	return t
}

func (m *Manager) notify(states []PeerState) {
	if m.opts.OnPeerState == nil || len(states) == 0 {
		return
	}
	m.cbMu.Lock()
	defer m.cbMu.Unlock()
	for _, s := range states {
		m.opts.OnPeerState(s)
	}
}

// Status is the state of every tunnel as of the last poll.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{Node: m.opts.Node, Interfaces: []InterfaceStatus{}}
	for name, t := range m.tunnels {
		is := InterfaceStatus{
			Name:         name,
			Link:         t.cfg.Link,
			PublicKey:    mustPublic(t.key),
			ListenPort:   t.cfg.Listen,
			Address:      t.cfg.Address,
			MTU:          t.mtu,
			Error:        m.errs[name],
			GSOFallbacks: t.bind.fallbacks.Load(),
		}
		if st, ok := m.states[name]; ok {
			is.Peer = st
		} else {
			is.Peer = PeerState{Interface: name, Link: t.cfg.Link, Node: t.cfg.PeerNode,
				PublicKey: t.cfg.Peer.String(), Address: t.cfg.PeerAddr(), AllowedIPs: t.cfg.AllowedIPs, Reason: "not polled yet"}
		}
		if d, err := t.get(); err == nil {
			is.ListenPort = d.ListenPort // the real one when 0 was asked for
		}
		s.Interfaces = append(s.Interfaces, is)
	}
	slices.SortFunc(s.Interfaces, func(a, b InterfaceStatus) int { return strings.Compare(a.Name, b.Name) })
	return s
}
