package vpn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"
)

// tunnel is one live WireGuard interface. Its fields change only under the
// Manager's lock; wireguard-go has its own.
type tunnel struct {
	cfg      Tunnel // as applied
	key      Key    // private key as applied; never logged
	endpoint string // resolved ip:port as applied ("" none)
	mtu      int    // as applied
	dev      *device.Device
	tdev     tun.Device
	bind     *splitBind
	uapi     net.Listener
	uapiDone chan struct{}
	health   tracker
	rekeyAt  time.Time // last key change not yet followed by a handshake
	// rekeyHS is the peer's handshake (wireguard-go's wall-clock time) at
	// the first poll after rekeyAt, once rekeyBase is set: a different one
	// is a handshake since the key change, whatever the wall clock did.
	rekeyHS   time.Time
	rekeyBase bool
	nextPush  time.Time
	fastPoll  bool // poll at rotatingPoll while rekeyAt is set (key changes and heals, not start)
	// oldPeer is the peer's previous public key while a rotation of it is
	// pending: it still holds the AllowedIPs.
	oldPeer Key
	log     *slog.Logger
	closeMu sync.Once
}

func wgLogger(log *slog.Logger) *device.Logger {
	l := &device.Logger{Verbosef: device.DiscardLogf, Errorf: device.DiscardLogf}
	if log.Enabled(context.Background(), slog.LevelDebug) {
		l.Verbosef = func(f string, a ...any) { log.Debug(fmt.Sprintf(f, a...)) }
	}
	// wireguard-go's errors are mostly transient send failures on a dead
	// path; the health tracker reports those, so they stay at debug level.
	l.Errorf = func(f string, a ...any) { log.Debug(fmt.Sprintf(f, a...)) }
	return l
}

// openTunnel creates the TUN device, starts wireguard-go on it, configures it
// in one UAPI transaction, addresses it and serves its UAPI socket.
func openTunnel(ctx context.Context, h *netlink.Handle, cfg Tunnel, key Key, log *slog.Logger) (_ *tunnel, err error) {
	t := &tunnel{cfg: cfg, key: key, log: log.With("interface", cfg.Name, "link", cfg.Link, "peer", cfg.PeerNode)}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	if t.endpoint, err = resolve(ctx, cfg.Endpoint); err != nil {
		return nil, err
	}
	if t.mtu, err = t.wantMTU(h); err != nil {
		return nil, err
	}
	// The socket first: its path is host-wide, so a name clash with another
	// namespace fails here, before any device exists.
	uapiFile, err := ipc.UAPIOpen(cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("vpn: %s: open UAPI socket: %w", cfg.Name, err)
	}
	t.uapi, err = ipc.UAPIListen(cfg.Name, uapiFile)
	uapiFile.Close()
	if err != nil {
		return nil, fmt.Errorf("vpn: %s: listen on UAPI socket: %w", cfg.Name, err)
	}
	t.tdev, err = tun.CreateTUN(cfg.Name, t.mtu)
	if err != nil {
		return nil, fmt.Errorf("vpn: %s: create TUN device: %w", cfg.Name, err)
	}
	t.bind = &splitBind{Bind: conn.NewDefaultBind()}
	t.dev = device.NewDevice(t.tdev, t.bind, wgLogger(t.log))

	var w uapiWriter
	w.key("private_key", key)
	w.kv("listen_port", fmt.Sprint(cfg.Listen))
	w.kv("replace_peers", "true")
	w.key("public_key", cfg.Peer)
	w.peerBody(&cfg, t.endpoint, true)
	if err := t.dev.IpcSet(w.String()); err != nil {
		return nil, fmt.Errorf("vpn: %s: configure: %w", cfg.Name, err)
	}
	link, err := h.LinkByName(cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("vpn: %s: find link: %w", cfg.Name, err)
	}
	if err := h.AddrReplace(link, &netlink.Addr{IPNet: prefixNet(cfg.Address)}); err != nil {
		return nil, fmt.Errorf("vpn: %s: address %s: %w", cfg.Name, cfg.Address, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("vpn: %s: set up: %w", cfg.Name, err)
	}
	if err := t.dev.Up(); err != nil {
		return nil, fmt.Errorf("vpn: %s: bring device up: %w", cfg.Name, err)
	}
	// Push the first handshake too: both ends of a link usually start
	// together, and crossed first initiations would otherwise wait for
	// wireguard-go's 5 s retry.
	t.rekeyAt, t.rekeyBase = time.Now(), false
	t.nextPush = t.rekeyAt.Add(pushEvery + rand.N(pushEvery))
	t.uapiDone = make(chan struct{})
	go t.serveUAPI()
	t.log.Info("tunnel up", "address", cfg.Address, "endpoint", t.endpoint, "listen", cfg.Listen, "mtu", t.mtu,
		"public_key", mustPublic(key), "peer_key", cfg.Peer.String())
	return t, nil
}

func (t *tunnel) serveUAPI() {
	defer close(t.uapiDone)
	for {
		c, err := t.uapi.Accept()
		if err != nil {
			return
		}
		go t.dev.IpcHandle(c)
	}
}

func (t *tunnel) wantMTU(h *netlink.Handle) (int, error) {
	if t.cfg.MTU != 0 {
		return t.cfg.MTU, nil
	}
	var dst netip.Addr
	if t.endpoint != "" {
		dst = netip.MustParseAddrPort(t.endpoint).Addr()
	}
	// A rendered site always carries an MTU (wireguard.mtu); only a tunnel
	// configured without one gets here, and guessing a figure for it would
	// be a second default.
	m, err := tunnelMTU(h, dst)
	if err != nil {
		return 0, fmt.Errorf("vpn: %s: no mtu given and %w", t.cfg.Name, err)
	}
	return m, nil
}

// update brings a live tunnel to cfg in place: one UAPI transaction for the
// WireGuard settings, netlink for MTU and address. The session survives
// everything but a key change, and even then the staged packets wait for the
// new handshake, which is started at once rather than on the next timer.
func (t *tunnel) update(ctx context.Context, h *netlink.Handle, cfg Tunnel, key Key) error {
	endpoint, err := resolve(ctx, cfg.Endpoint)
	if err != nil {
		return err
	}
	old := t.cfg
	t.cfg = cfg // wantMTU reads it
	mtu, err := t.wantMTU(h)
	t.cfg = old
	if err != nil {
		return err
	}
	var w uapiWriter
	rekey := false
	if key != t.key {
		w.key("private_key", key)
		rekey = true
	}
	if cfg.Listen != old.Listen {
		w.kv("listen_port", fmt.Sprint(cfg.Listen))
	}
	ep := ""
	if endpoint != t.endpoint {
		ep = endpoint // an unchanged endpoint is left alone: the peer may have roamed
	}
	pending := t.oldPeer
	switch {
	case cfg.Peer != old.Peer && cfg.Peer == pending:
		// A rotation undone before it completed: drop the unconfirmed key.
		w.key("public_key", old.Peer)
		w.kv("remove", "true")
		w.key("public_key", cfg.Peer)
		w.kv("update_only", "true")
		w.peerBody(&cfg, ep, true)
		pending = Key{}
	case cfg.Peer != old.Peer:
		// Make before break: the peer's old key keeps its AllowedIPs, and
		// so the traffic, until the new key has completed a handshake
		// (finishRotation); then the old one goes.
		if pending.IsZero() {
			pending = old.Peer
			if !t.carrying(old.Peer) {
				// Nothing flows on the old key: the peer has most likely
				// rotated already, and its packets queued for the new
				// key would arrive (one round trip after the handshake)
				// before we could move the AllowedIPs. Break before make.
				w.key("public_key", old.Peer)
				w.kv("remove", "true")
				w.key("public_key", cfg.Peer)
				w.peerBody(&cfg, endpoint, true)
				pending = Key{}
				rekey = true
				break
			}
		} else {
			w.key("public_key", old.Peer) // an earlier new key, never confirmed
			w.kv("remove", "true")
		}
		w.key("public_key", pending)
		w.kv("update_only", "true")
		w.peerBody(&cfg, ep, true)
		w.key("public_key", cfg.Peer)
		w.peerBody(&cfg, endpoint, false)
		rekey = true
	default:
		if !pending.IsZero() {
			w.key("public_key", pending)
			w.kv("update_only", "true")
			w.peerBody(&cfg, ep, true)
		}
		w.key("public_key", cfg.Peer)
		w.kv("update_only", "true")
		w.peerBody(&cfg, ep, pending.IsZero())
	}
	if err := t.dev.IpcSet(w.String()); err != nil {
		return fmt.Errorf("vpn: %s: reconfigure: %w", cfg.Name, err)
	}
	t.key, t.endpoint, t.oldPeer = key, endpoint, pending
	t.cfg.Listen, t.cfg.Peer, t.cfg.Endpoint = cfg.Listen, cfg.Peer, cfg.Endpoint
	t.cfg.Keepalive, t.cfg.AllowedIPs, t.cfg.KeyFile, t.cfg.Link = cfg.Keepalive, cfg.AllowedIPs, cfg.KeyFile, cfg.Link
	if rekey {
		t.newSession()
		t.log.Info("tunnel keys changed; handshaking", "public_key", mustPublic(key), "peer_key", cfg.Peer.String())
	}

	link, err := h.LinkByName(cfg.Name)
	if err != nil {
		return fmt.Errorf("vpn: %s: find link: %w", cfg.Name, err)
	}
	if mtu != t.mtu {
		// wireguard-go follows the link's MTU through its netlink listener.
		if err := h.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("vpn: %s: set mtu %d: %w", cfg.Name, mtu, err)
		}
		t.mtu = mtu
	}
	t.cfg.MTU = cfg.MTU
	if cfg.Address != old.Address {
		if err := h.AddrReplace(link, &netlink.Addr{IPNet: prefixNet(cfg.Address)}); err != nil {
			return fmt.Errorf("vpn: %s: address %s: %w", cfg.Name, cfg.Address, err)
		}
		if err := h.AddrDel(link, &netlink.Addr{IPNet: prefixNet(old.Address)}); err != nil {
			t.log.Warn("remove old tunnel address", "address", old.Address, "err", err)
		}
		t.cfg.Address = cfg.Address
	}
	return nil
}

// newSession follows a change that ends the peer's session (a key
// change, or the peer re-added by a heal): the health seen so far belongs
// to the old session, so it starts again, and handshakes are pushed with
// the monitor polling fast until one completes.
func (t *tunnel) newSession() {
	t.health.reset()
	t.rekeyAt, t.rekeyBase = time.Now(), false
	t.nextPush = t.rekeyAt.Add(pushEvery + rand.N(pushEvery))
	t.fastPoll = true
	t.kick()
}

// kick sends a keepalive, which starts a handshake when there is no session,
// instead of waiting up to a keepalive interval for the first one.
func (t *tunnel) kick() {
	if p := t.dev.LookupPeer(device.NoisePublicKey(t.cfg.Peer)); p != nil {
		p.SendKeepalive()
	}
}

// pushEvery spaces handshake pushes after a key change: far more than a
// round trip, so a handshake under way completes before the next push.
const pushEvery = 250 * time.Millisecond

// rekeyTimeout bounds how long handshakes are pushed after a key change.
const rekeyTimeout = 30 * time.Second

// pushHandshake is called on every poll after a key change until a
// handshake completes. The two ends of a link apply a rotation a moment
// apart: the first one's handshake fails against the other's old key, or
// both initiate at once and their handshakes cross and cancel. wireguard-go
// retries only after Rekey-Timeout (5 s); we retry every few hundred
// milliseconds, at jittered times so the two ends do not cross again.
func (t *tunnel) pushHandshake(now time.Time, p uapiPeer) {
	if t.rekeyAt.IsZero() {
		return
	}
	// Only the first poll after the change compares the wall clock with
	// rekeyAt (a handshake between the change and that poll); later ones
	// look for a handshake other than the one that poll saw, so a step of
	// the wall clock neither ends the pushes early nor keeps expiring a
	// fresh session until rekeyTimeout.
	done := false
	if !t.rekeyBase {
		t.rekeyHS, t.rekeyBase = p.LastHandshake, true
		done = p.LastHandshake.After(t.rekeyAt)
	} else {
		done = !p.LastHandshake.Equal(t.rekeyHS)
	}
	if done || now.Sub(t.rekeyAt) > rekeyTimeout {
		t.rekeyAt, t.fastPoll = time.Time{}, false
		return
	}
	if now.Before(t.nextPush) {
		return
	}
	t.nextPush = now.Add(pushEvery + rand.N(pushEvery))
	if peer := t.dev.LookupPeer(device.NoisePublicKey(t.cfg.Peer)); peer != nil {
		// There is no session since the key change, so expiring it costs
		// nothing; it also lifts the once-per-Rekey-Timeout limit.
		peer.ExpireCurrentKeypairs()
		_ = peer.SendHandshakeInitiation(false)
	}
}

// finishRotation moves the AllowedIPs from the peer's old key to its new one
// once the new key has completed a handshake (or the rotation timed out:
// the config says the old key is no longer to be trusted), and removes the
// old key.
func (t *tunnel) finishRotation(now time.Time, p uapiPeer) {
	if t.oldPeer.IsZero() {
		return
	}
	// Bytes received under the new key are an authenticated handshake
	// message: the peer runs the new key, so its old one is dead already.
	if p.LastHandshake.IsZero() && p.RxBytes == 0 && now.Sub(t.rekeyAt) <= rekeyTimeout {
		return
	}
	var w uapiWriter
	w.key("public_key", t.oldPeer)
	w.kv("remove", "true")
	w.key("public_key", t.cfg.Peer)
	w.kv("update_only", "true")
	w.kv("replace_allowed_ips", "true")
	for _, a := range t.cfg.AllowedIPs {
		w.kv("allowed_ip", a.String())
	}
	if err := t.dev.IpcSet(w.String()); err != nil {
		t.log.Error("finish peer key rotation", "err", err)
		return
	}
	t.oldPeer = Key{}
	t.log.Info("peer key rotated", "peer_key", t.cfg.Peer.String(), "handshake", !p.LastHandshake.IsZero())
}

// carryWindow is how long carrying watches the old key for traffic.
const carryWindow = 20 * time.Millisecond

// carrying reports whether packets arrive under key k right now.
func (t *tunnel) carrying(k Key) bool {
	rx := func() uint64 {
		d, err := t.get()
		if err != nil {
			return 0
		}
		return findPeer(d.Peers, k).RxBytes
	}
	before := rx()
	time.Sleep(carryWindow)
	return rx() != before
}

// pollFast reports whether a key change or a heal still waits for its
// handshake, or a rotation of the peer's key for its end.
func (t *tunnel) pollFast() bool {
	return (t.fastPoll && !t.rekeyAt.IsZero()) || t.rotating()
}

// rotating reports whether a rotation of the peer's key is under way: the
// old key still holds the AllowedIPs beside the new one, which Drift would
// read as a foreign peer. A change of our own key awaiting its handshake is
// not one: the device already holds what was applied.
func (t *tunnel) rotating() bool {
	return !t.oldPeer.IsZero()
}

func (t *tunnel) get() (uapiDevice, error) {
	s, err := t.dev.IpcGet()
	if err != nil {
		return uapiDevice{}, fmt.Errorf("vpn: %s: read state: %w", t.cfg.Name, err)
	}
	return parseUAPI(s)
}

// close stops the device and removes the TUN interface and UAPI socket.
func (t *tunnel) close() {
	t.closeMu.Do(func() {
		if t.uapi != nil {
			t.uapi.Close() // unlinks the socket
			if t.uapiDone != nil {
				<-t.uapiDone
			}
		}
		if t.dev != nil {
			t.dev.Close() // closes the TUN device and the bind too
		} else if t.tdev != nil {
			t.tdev.Close()
		}
	})
}

func resolve(ctx context.Context, ep string) (string, error) {
	if ep == "" {
		return "", nil
	}
	ap, err := resolveEndpoint(ctx, ep)
	if err != nil {
		return "", err
	}
	return ap.String(), nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func mustPublic(k Key) string {
	p, err := k.PublicKey()
	if err != nil {
		return "invalid"
	}
	return p.String()
}

var errClosed = errors.New("vpn: manager closed")
