package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/route"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/test/netns"
	"github.com/intercloud/intercloud/vpn"
)

func TestMain(m *testing.M) { netns.Main(m) }

// siteOpts shape the one-gateway site of these tests.
type siteOpts struct {
	cloud   string // the node's cloud ("" is c)
	keyFile string // "": no vpn link
	bgpPort int    // -1: do not listen
	wgPort  int
}

// snapshot is a site with gateway node gw and, with a key file, a vpn link
// to node peer. Routes go to table 4242, protocol 242, so the host's
// routes are never touched.
func snapshot(t testing.TB, o siteOpts) *config.Snapshot {
	t.Helper()
	if o.cloud == "" {
		o.cloud = "c"
	}
	s := config.Site{
		Clouds: []config.Cloud{
			{Name: "c", ASN: 65001, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
			{Name: "d", ASN: 65002, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}},
		},
		Nodes: []config.Node{
			{Name: "gw", Cloud: o.cloud, Roles: []config.Role{config.RoleGateway},
				Gateway: &config.Gateway{RouterID: netip.MustParseAddr("10.255.0.1"), ListenPort: o.bgpPort, Table: 4242, Protocol: 242}},
			{Name: "peer", Cloud: "d", Roles: []config.Role{config.RoleGateway},
				Gateway: &config.Gateway{RouterID: netip.MustParseAddr("10.255.0.2"), ListenPort: -1}},
		},
	}
	if o.keyFile != "" {
		k, err := vpn.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		pub, err := k.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		s.Nodes[0].Gateway.Wireguard = &config.Wireguard{PrivateKeyFile: o.keyFile, ListenPort: o.wgPort}
		s.Links = []config.Link{{Name: "vpn", Kind: config.LinkVPN,
			A: config.LinkEnd{Node: "gw", Tunnel: netip.MustParsePrefix("100.64.0.1/30")},
			B: config.LinkEnd{Node: "peer", Tunnel: netip.MustParsePrefix("100.64.0.2/30"), PublicKey: pub.String()},
		}}
	}
	snap := &config.Snapshot{Revision: 1, Site: s}
	snap.SetDefaults() // as config rendering fills them
	return snap
}

// apply prepares and commits snap, as the agent does.
func apply(t testing.TB, g *Gateway, snap *config.Snapshot) {
	t.Helper()
	c, err := g.Prepare(context.Background(), snap)
	if err != nil {
		t.Fatal(err)
	}
	c.Commit()
	if err := g.Ready(); err != nil {
		t.Fatalf("Ready after commit: %v", err)
	}
}

func newGateway(t testing.TB, mux *http.ServeMux) *Gateway {
	t.Helper()
	g, err := New(role.Options{Node: "gw", Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), Mux: mux})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(context.Background()) })
	return g
}

func get(t *testing.T, srv *httptest.Server, path string, v any) int {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// TestAdminAPI commits a revision and reads /v1/bgp/neighbors,
// /v1/bgp/routes and /v1/vpn. The node has no session and learns nothing.
func TestAdminAPI(t *testing.T) {
	mux := http.NewServeMux()
	g := newGateway(t, mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var ns []bgp.NeighborStatus
	if code := get(t, srv, "/v1/bgp/neighbors", &ns); code != http.StatusServiceUnavailable {
		t.Fatalf("before the first commit: status %d, want 503", code)
	}
	if err := g.Ready(); err == nil {
		t.Fatal("ready before the first commit")
	}
	apply(t, g, snapshot(t, siteOpts{bgpPort: -1}))
	if code := get(t, srv, "/v1/bgp/neighbors", &ns); code != 200 || len(ns) != 0 {
		t.Fatalf("neighbors: status %d, %v", code, ns)
	}
	var rs []Route
	if code := get(t, srv, "/v1/bgp/routes", &rs); code != 200 {
		t.Fatalf("routes: status %d", code)
	}
	if len(rs) != 1 || rs[0].Prefix.String() != "10.1.0.0/16" || !rs[0].Local || rs[0].Installed {
		t.Fatalf("routes: %+v, want our own CIDR, local, not in the kernel", rs)
	}
	var st vpn.Status
	if code := get(t, srv, "/v1/vpn", &st); code != 200 || len(st.Interfaces) != 0 {
		t.Fatalf("vpn: status %d, %+v", code, st)
	}
	var rep status.RoleReport
	g.Report(&rep)
	if len(rep.Sessions) != 0 || len(rep.Tunnels) != 0 {
		t.Fatalf("report: %+v", rep)
	}
}

// TestPrepareFailsAndLeavesTheRunningGateway: a revision that cannot run
// fails in Prepare with an error naming what is wrong, and the running
// gateway keeps what it had: same routes, still ready, no device made.
func TestPrepareFailsAndLeavesTheRunningGateway(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.key")
	garbage := filepath.Join(dir, "garbage.key")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	mux := http.NewServeMux()
	g := newGateway(t, mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	apply(t, g, snapshot(t, siteOpts{bgpPort: -1}))
	var before []Route
	get(t, srv, "/v1/bgp/routes", &before)

	tests := []struct {
		name string
		o    siteOpts
		want string
	}{
		{"wireguard private key file missing", siteOpts{bgpPort: -1, keyFile: missing}, missing},
		{"wireguard private key file not a key", siteOpts{bgpPort: -1, keyFile: garbage}, garbage},
		{"bgp listen port taken", siteOpts{bgpPort: takenPort}, "bgp listen port"},
		{"node in an unknown cloud", siteOpts{bgpPort: -1, cloud: "nowhere"}, `cloud "nowhere"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := g.Prepare(context.Background(), snapshot(t, tt.o))
			if err == nil {
				c.Abort()
				t.Fatal("prepared")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not name %q", err, tt.want)
			}
			if err := g.Ready(); err != nil {
				t.Fatalf("running gateway not ready: %v", err)
			}
			var after []Route
			if code := get(t, srv, "/v1/bgp/routes", &after); code != 200 || !slices.EqualFunc(before, after, func(a, b Route) bool {
				return a.Prefix == b.Prefix && a.Local == b.Local
			}) {
				t.Fatalf("routes changed: %d %+v, had %+v", code, after, before)
			}
			if _, err := netlink.LinkByName(vpn.IfName("peer")); !errors.As(err, new(netlink.LinkNotFoundError)) {
				t.Fatalf("tunnel device of the refused revision: %v", err)
			}
		})
	}
}

// TestTunnelStateDrivesBGPNeighbor: a tunnel reported down takes its BGP
// neighbor out of the running speaker, a later commit keeps it out, and
// it is back when the tunnel is up; the dedicated neighbor is untouched.
// Real GoBGP, in process, listening nowhere.
func TestTunnelStateDrivesBGPNeighbor(t *testing.T) {
	tun := netip.MustParseAddr("127.0.0.2")
	dx := netip.MustParseAddr("127.0.0.3")
	cfg := Config{BGP: bgp.Config{
		ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: -1,
		Neighbors: []bgp.Neighbor{
			{Name: "dx", Kind: bgp.KindDedicated, Address: dx, ASN: 65002, Port: 1, ConnectRetry: time.Hour},
			{Name: "vpn", Kind: bgp.KindVPN, Address: tun, ASN: 65002, Port: 1, ConnectRetry: time.Hour},
		},
	}, Route: routeTestTable}
	g := newGateway(t, nil)
	ctx := context.Background()
	commit := func() {
		t.Helper()
		c, err := g.PrepareConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.Commit()
	}
	names := func() []string {
		ns, err := g.bgp.Neighbors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, n := range ns {
			out = append(out, n.Name)
		}
		slices.Sort(out)
		return out
	}
	// The loop takes verdicts in its own time: wait for it, assert no
	// duration.
	want := func(what string, w ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for got := names(); !slices.Equal(got, w); got = names() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: neighbors %v, want %v", what, got, w)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	commit()
	want("after commit", "dx", "vpn")
	g.peers.push(vpn.PeerState{Address: tun, Up: false, Reason: "nothing received"})
	want("after the tunnel died", "dx")
	commit()
	want("after a commit while the tunnel is down", "dx")
	g.peers.push(vpn.PeerState{Address: tun, Up: true})
	want("after the tunnel came back", "dx", "vpn")
}

// routeTestTable keeps the tests' routes away from the host's.
var routeTestTable = route.Config{Table: 4242, Protocol: 242}
