package vpn

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Diff is one setting of a running tunnel that differs from what was
// applied: someone ran `wg set`, `ip link set mtu`, or removed the peer.
type Diff struct {
	Interface string
	// What names the setting: "peer <key>", "peer <key> endpoint",
	// "peer <key> allowed-ips", "peer <key> keepalive", "private key",
	// "listen port", "mtu".
	What             string
	Expected, Actual string
}

// ID is the resource's name in drift reports.
func (d Diff) ID() string { return d.Interface + " " + d.What }

// applied is what a tunnel should run, as the Manager set it.
type applied struct {
	public    string // our public key
	listen    int    // 0: any
	peer      Key
	endpoint  string // "": none configured (the peer calls us)
	allowed   []netip.Prefix
	keepalive int // seconds
	mtu       int
}

// observed is what the device and the link hold now.
type observed struct {
	public string // derived from the device's private key
	dev    uapiDevice
	mtu    int
}

// diffTunnel lists what differs between want and got, in a fixed order.
func diffTunnel(name string, want applied, got observed) []Diff {
	var out []Diff
	add := func(what, exp, act string) {
		out = append(out, Diff{Interface: name, What: what, Expected: exp, Actual: act})
	}
	if got.public != want.public {
		add("private key", "public key "+want.public, "public key "+got.public)
	}
	if want.listen != 0 && got.dev.ListenPort != want.listen {
		add("listen port", strconv.Itoa(want.listen), strconv.Itoa(got.dev.ListenPort))
	}
	if got.mtu != want.mtu {
		add("mtu", strconv.Itoa(want.mtu), strconv.Itoa(got.mtu))
	}
	peer := "peer " + want.peer.String()
	i := slices.IndexFunc(got.dev.Peers, func(p uapiPeer) bool { return p.PublicKey == want.peer })
	if i < 0 {
		add(peer, describePeer(want.endpoint, want.allowed, want.keepalive), "absent")
	} else {
		p := got.dev.Peers[i]
		if want.endpoint != "" && p.Endpoint != want.endpoint {
			add(peer+" endpoint", want.endpoint, orNone(p.Endpoint))
		}
		if !samePrefixes(p.AllowedIPs, want.allowed) {
			add(peer+" allowed-ips", prefixList(want.allowed), prefixList(p.AllowedIPs))
		}
		if p.Keepalive != want.keepalive {
			add(peer+" keepalive", strconv.Itoa(want.keepalive)+"s", strconv.Itoa(p.Keepalive)+"s")
		}
	}
	for _, p := range got.dev.Peers {
		if p.PublicKey != want.peer {
			add("peer "+p.PublicKey.String(), "absent", describePeer(p.Endpoint, p.AllowedIPs, p.Keepalive))
		}
	}
	return out
}

func describePeer(endpoint string, allowed []netip.Prefix, keepalive int) string {
	return fmt.Sprintf("endpoint %s, allowed-ips %s, keepalive %ds", orNone(endpoint), prefixList(allowed), keepalive)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "(none)"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}

func samePrefixes(a, b []netip.Prefix) bool {
	return prefixList(a) == prefixList(b)
}

// Drift compares every tunnel with what was applied to it. A tunnel in
// the middle of a key rotation is skipped: two peers and moving AllowedIPs
// are what a rotation looks like.
func (m *Manager) Drift() ([]Diff, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	var out []Diff
	var errs []string
	for _, name := range slices.Sorted(maps.Keys(m.tunnels)) {
		t := m.tunnels[name]
		if t.rotating() {
			continue
		}
		got, err := m.observe(t)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		out = append(out, diffTunnel(name, t.applied(), got)...)
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("vpn: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

func (t *tunnel) applied() applied {
	return applied{public: mustPublic(t.key), listen: t.cfg.Listen, peer: t.cfg.Peer, endpoint: t.endpoint,
		allowed: t.cfg.AllowedIPs, keepalive: int(t.cfg.Keepalive / time.Second), mtu: t.mtu}
}

// observe reads the device over its UAPI (as `wg show` does) and the
// link's MTU over netlink.
func (m *Manager) observe(t *tunnel) (observed, error) {
	s, err := t.dev.IpcGet()
	if err != nil {
		return observed{}, fmt.Errorf("%s: read state: %w", t.cfg.Name, err)
	}
	dev, err := parseUAPI(s)
	if err != nil {
		return observed{}, fmt.Errorf("%s: %w", t.cfg.Name, err)
	}
	link, err := m.h.LinkByName(t.cfg.Name)
	if err != nil {
		return observed{}, fmt.Errorf("%s: find link: %w", t.cfg.Name, err)
	}
	return observed{public: publicOfGet(s), dev: dev, mtu: link.Attrs().MTU}, nil
}

// publicOfGet derives the public key from the private key of a UAPI get;
// the private key itself is never kept.
func publicOfGet(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "private_key=")
		if !ok {
			continue
		}
		var k Key
		b, err := hex.DecodeString(v)
		if err != nil || len(b) != KeyLen {
			return "(unreadable)"
		}
		copy(k[:], b)
		clear(b)
		pub, err := k.PublicKey()
		clear(k[:])
		if err != nil {
			return "(invalid)"
		}
		return pub.String()
	}
	return "(none)"
}

// Heal puts the tunnel on interface name back as it was applied, in one
// UAPI transaction (a foreign peer removed, ours re-set with its endpoint,
// AllowedIPs and keepalive; the key and port when they differ) and the MTU
// over netlink. A peer that had to be re-added is handshaked at once.
func (m *Manager) Heal(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	t := m.tunnels[name]
	if t == nil {
		return fmt.Errorf("vpn: heal %s: no such tunnel", name)
	}
	if t.rotating() {
		return fmt.Errorf("vpn: heal %s: a key rotation is under way", name)
	}
	got, err := m.observe(t)
	if err != nil {
		return fmt.Errorf("vpn: heal: %w", err)
	}
	want := t.applied()
	var w uapiWriter
	if got.public != want.public {
		w.key("private_key", t.key)
	}
	if want.listen != 0 && got.dev.ListenPort != want.listen {
		w.kv("listen_port", strconv.Itoa(want.listen))
	}
	readd := true
	for _, p := range got.dev.Peers {
		if p.PublicKey == t.cfg.Peer {
			readd = false
			continue
		}
		w.key("public_key", p.PublicKey)
		w.kv("remove", "true")
	}
	w.key("public_key", t.cfg.Peer)
	w.peerBody(&t.cfg, t.endpoint, true)
	if err := t.dev.IpcSet(w.String()); err != nil {
		return fmt.Errorf("vpn: heal %s: %w", name, err)
	}
	if got.mtu != want.mtu {
		link, err := m.h.LinkByName(name)
		if err == nil {
			err = m.h.LinkSetMTU(link, want.mtu)
		}
		if err != nil {
			return fmt.Errorf("vpn: heal %s: set mtu %d: %w", name, want.mtu, err)
		}
	}
	if readd || got.public != want.public {
		t.rekeyAt, t.rekeyBase = time.Now(), false
		t.nextPush = t.rekeyAt.Add(pushEvery + rand.N(pushEvery))
		t.kick()
	}
	t.log.Info("tunnel healed", "peer_readded", readd, "key", got.public != want.public, "mtu", got.mtu != want.mtu)
	return nil
}
