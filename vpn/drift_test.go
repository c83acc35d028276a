package vpn_test

import (
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/test/testenv"
	"github.com/intercloud/intercloud/vpn"
)

func (d *daemon) drift() []vpn.Diff {
	d.t.Helper()
	var out []vpn.Diff
	d.get("/drift", &out)
	return out
}

func (d *daemon) heal(iface string) {
	d.t.Helper()
	resp, err := d.c.Post("http://vpnd/heal?interface="+iface, "", nil)
	if err != nil {
		d.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		d.t.Fatalf("heal %s: %s", iface, resp.Status)
	}
}

// Each case changes a running tunnel behind the Manager's back with the
// standard tools, run inside the gateway's namespace; Drift must name
// exactly that setting, and Heal must put it back with traffic flowing
// again.
func TestDriftAndHealTunnel(t *testing.T) {
	testenv.NeedTool(t, "ping", "iputils-ping")
	testenv.NeedTool(t, "wg", "wireguard-tools")
	tp := newTopo(t, 1500)
	da, _ := tp.up(t)
	if d := da.drift(); len(d) != 0 {
		t.Fatalf("fresh tunnel drifted: %+v", d)
	}
	peer := tp.site.Links[0].B.PublicKey
	other := filepath.Join(t.TempDir(), "other.key")
	otherPub := newKey(t, other)
	ifA := tp.ifA()
	cases := []struct {
		name string
		cmd  []string
		what string
		// newSession: the heal starts a new session (peer re-added or
		// our key re-set), so the peer's health starts again and is
		// reported anew.
		newSession bool
	}{
		{"peer removed", []string{"wg", "set", ifA, "peer", peer, "remove"}, "peer " + peer, true},
		{"allowed-ips", []string{"wg", "set", ifA, "peer", peer, "allowed-ips", "100.64.0.2/32"}, "peer " + peer + " allowed-ips", false},
		{"foreign peer", []string{"wg", "set", ifA, "peer", otherPub, "allowed-ips", "10.99.0.0/16"}, "peer " + otherPub, false},
		{"private key", []string{"wg", "set", ifA, "private-key", other}, "private key", true},
		{"listen port", []string{"wg", "set", ifA, "listen-port", "51999"}, "listen port", false},
		{"mtu", []string{"ip", "link", "set", "dev", ifA, "mtu", "1280"}, "mtu", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp.a.MustRun(c.cmd[0], c.cmd[1:]...)
			d := da.drift()
			var whats []string
			for _, x := range d {
				whats = append(whats, x.What)
			}
			if !slices.Contains(whats, c.what) || len(d) != 1 {
				t.Fatalf("after %s: drift %+v, want only %q", strings.Join(c.cmd, " "), d, c.what)
			}
			if d[0].Interface != ifA || d[0].Expected == d[0].Actual {
				t.Fatalf("diff %+v", d[0])
			}
			before := len(da.events())
			da.heal(ifA)
			if d := da.drift(); len(d) != 0 {
				t.Fatalf("after heal: %+v", d)
			}
			if c.newSession {
				da.waitEvent(before, ifA, true, 15*time.Second)
			}
			// The peer handshakes again (the heal pushes it) and carries
			// traffic.
			deadline := time.Now().Add(15 * time.Second)
			for {
				if _, recv := ping(t, tp.a, "-c", "1", "-W", "1", "100.64.0.2"); recv == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no traffic through the healed tunnel")
				}
			}
		})
	}
}

// waitEvent waits for an OnPeerState call after the first `after` ones
// that says the peer of iface is up (or down).
func (d *daemon) waitEvent(after int, iface string, up bool, within time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ev := d.events()
		for _, e := range ev[min(after, len(ev)):] {
			if e.Interface == iface && e.Up == up {
				return
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no peer state up=%v for %s after the first %d: %+v", up, iface, after, ev)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
