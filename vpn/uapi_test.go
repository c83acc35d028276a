package vpn

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// What we write must be what wireguard-go accepts, and what it answers must
// parse back to the same settings. A wireguard-go device on a channel TUN
// and an in-memory bind needs no privileges.
func TestUAPIRoundTrip(t *testing.T) {
	binds := bindtest.NewChannelBinds()
	dev := device.NewDevice(tuntest.NewChannelTUN().TUN(), binds[0], device.NewLogger(device.LogLevelSilent, ""))
	defer dev.Close()

	priv, _ := GenerateKey()
	peerPriv, _ := GenerateKey()
	peer, _ := peerPriv.PublicKey()
	tun := Tunnel{
		Keepalive:  7 * time.Second,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("100.64.0.2/32"), netip.MustParsePrefix("10.2.0.0/16")},
	}
	var w uapiWriter
	w.key("private_key", priv)
	w.kv("listen_port", "0")
	w.kv("replace_peers", "true")
	w.key("public_key", peer)
	w.peerBody(&tun, "", true)
	if err := dev.IpcSet(w.String()); err != nil {
		t.Fatalf("IpcSet: %v", err)
	}
	out, err := dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseUAPI(out)
	if err != nil {
		t.Fatalf("parse %q: %v", out, err)
	}
	if len(d.Peers) != 1 {
		t.Fatalf("peers = %d, want 1", len(d.Peers))
	}
	p := d.Peers[0]
	if p.PublicKey != peer || p.Keepalive != 7 || !p.LastHandshake.IsZero() {
		t.Fatalf("peer = %+v", p)
	}
	if len(p.AllowedIPs) != 2 {
		t.Fatalf("allowed ips = %v", p.AllowedIPs)
	}

	// Replacing the allowed IPs in place keeps the peer.
	tun.AllowedIPs = tun.AllowedIPs[:1]
	w = uapiWriter{}
	w.key("public_key", peer)
	w.kv("update_only", "true")
	w.peerBody(&tun, "", true)
	if err := dev.IpcSet(w.String()); err != nil {
		t.Fatal(err)
	}
	out, _ = dev.IpcGet()
	d, _ = parseUAPI(out)
	if len(d.Peers) != 1 || len(d.Peers[0].AllowedIPs) != 1 {
		t.Fatalf("after update: %+v", d.Peers)
	}
}

func TestParseUAPI(t *testing.T) {
	pk := strings.Repeat("ab", 32)
	tests := []struct {
		name, in string
		ok       bool
		peers    int
	}{
		{"empty", "", true, 0},
		{"device only", "private_key=" + pk + "\nlisten_port=51820\nerrno=0\n\n", true, 0},
		{"one peer", "listen_port=1\npublic_key=" + pk + "\nendpoint=192.0.2.1:51820\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\nrx_bytes=10\ntx_bytes=20\npersistent_keepalive_interval=5\nallowed_ip=10.0.0.0/8\nerrno=0\n\n", true, 1},
		{"unknown keys are ignored", "public_key=" + pk + "\nfuture_key=1\n", true, 1},
		{"errno", "errno=22\n\n", false, 0},
		{"no equals", "listen_port\n", false, 0},
		{"short key", "public_key=abcd\n", false, 0},
		{"peer key before peer", "rx_bytes=1\n", false, 0},
		{"bad number", "public_key=" + pk + "\nrx_bytes=-1\n", false, 0},
		{"bad prefix", "public_key=" + pk + "\nallowed_ip=10.0.0.0/33\n", false, 0},
		{"port too big", "listen_port=70000\n", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := parseUAPI(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err == nil && len(d.Peers) != tt.peers {
				t.Fatalf("peers = %d, want %d", len(d.Peers), tt.peers)
			}
			if err != nil && strings.Contains(err.Error(), pk) {
				t.Fatalf("error echoes key material: %v", err)
			}
		})
	}
	d, _ := parseUAPI(tests[2].in)
	if got := d.Peers[0].LastHandshake; !got.Equal(time.Unix(1700000000, 5)) {
		t.Fatalf("handshake = %v", got)
	}
}

func FuzzParseUAPI(f *testing.F) {
	pk := strings.Repeat("01", 32)
	f.Add("listen_port=51820\npublic_key=" + pk + "\nendpoint=[::1]:1\nlast_handshake_time_sec=1\nrx_bytes=1\nallowed_ip=::/0\nerrno=0\n\n")
	f.Add("private_key=" + pk + "\n")
	f.Add("errno=1\n")
	f.Add("=\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseUAPI(s)
		if err != nil {
			return
		}
		for _, p := range d.Peers {
			for _, a := range p.AllowedIPs {
				if !a.IsValid() {
					t.Fatalf("invalid prefix accepted from %q", s)
				}
			}
		}
	})
}
