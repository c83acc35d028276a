package vpn

import (
	"net/netip"
	"slices"
	"testing"
)

// Expected tunnel settings against what the device holds, one setting at
// a time and all at once.
func TestDiffTunnel(t *testing.T) {
	k1, k2 := Key{1}, Key{2}
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	want := applied{public: "PUB", listen: 51820, peer: k1, endpoint: "192.0.2.2:51820",
		allowed: pfx("100.64.0.2/32", "10.2.0.0/16"), keepalive: 25, mtu: 1420}
	good := func() observed {
		return observed{public: "PUB", mtu: 1420, dev: uapiDevice{ListenPort: 51820, Peers: []uapiPeer{{
			PublicKey: k1, Endpoint: "192.0.2.2:51820", AllowedIPs: pfx("10.2.0.0/16", "100.64.0.2/32"), Keepalive: 25}}}}
	}
	cases := []struct {
		name   string
		break_ func(o *observed)
		diffs  []string // What: Expected -> Actual
	}{
		{"equal (allowed-ips in another order)", func(*observed) {}, nil},
		{"peer removed", func(o *observed) { o.dev.Peers = nil },
			[]string{"peer " + k1.String() + ": endpoint 192.0.2.2:51820, allowed-ips 10.2.0.0/16,100.64.0.2/32, keepalive 25s -> absent"}},
		{"foreign peer added", func(o *observed) { o.dev.Peers = append(o.dev.Peers, uapiPeer{PublicKey: k2}) },
			[]string{"peer " + k2.String() + ": absent -> endpoint (none), allowed-ips (none), keepalive 0s"}},
		{"allowed-ips", func(o *observed) { o.dev.Peers[0].AllowedIPs = pfx("10.9.0.0/16") },
			[]string{"peer " + k1.String() + " allowed-ips: 10.2.0.0/16,100.64.0.2/32 -> 10.9.0.0/16"}},
		{"endpoint", func(o *observed) { o.dev.Peers[0].Endpoint = "" },
			[]string{"peer " + k1.String() + " endpoint: 192.0.2.2:51820 -> (none)"}},
		{"keepalive", func(o *observed) { o.dev.Peers[0].Keepalive = 0 },
			[]string{"peer " + k1.String() + " keepalive: 25s -> 0s"}},
		{"key, port and mtu", func(o *observed) { o.public, o.dev.ListenPort, o.mtu = "OTHER", 40000, 1280 },
			[]string{"private key: public key PUB -> public key OTHER", "listen port: 51820 -> 40000", "mtu: 1420 -> 1280"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := good()
			c.break_(&o)
			var got []string
			for _, d := range diffTunnel("ic-b", want, o) {
				if d.Interface != "ic-b" {
					t.Errorf("interface %q", d.Interface)
				}
				got = append(got, d.What+": "+d.Expected+" -> "+d.Actual)
			}
			if !slices.Equal(got, c.diffs) {
				t.Fatalf("got  %q\nwant %q", got, c.diffs)
			}
		})
	}
	// A port picked by the kernel (listen 0) is not drift.
	w0 := want
	w0.listen = 0
	o := good()
	o.dev.ListenPort = 40001
	if d := diffTunnel("ic-b", w0, o); len(d) != 0 {
		t.Fatalf("listen 0: %v", d)
	}
}
