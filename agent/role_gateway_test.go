package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
)

// TestGatewayRoleAdminAPI applies a snapshot to the gateway role and reads
// /v1/bgp/neighbors and /v1/bgp/routes from its admin routes. The node has
// no links (no session, nothing learned) and uses a table and protocol of
// its own, so the host's routes are never touched.
func TestGatewayRoleAdminAPI(t *testing.T) {
	mux := http.NewServeMux()
	gw, err := roleFactories[config.RoleGateway](role.Options{Node: "gw", Registry: prometheus.NewRegistry(), Mux: mux})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(path string, v any) int {
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
	var ns []bgp.NeighborStatus
	if code := get("/v1/bgp/neighbors", &ns); code != http.StatusServiceUnavailable {
		t.Fatalf("before the first apply: status %d, want 503", code)
	}

	snap := &config.Snapshot{Revision: 1, Site: config.Site{
		Clouds: []config.Cloud{{Name: "c", ASN: 65001, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}},
		Nodes: []config.Node{{Name: "gw", Cloud: "c", Roles: []config.Role{config.RoleGateway},
			Gateway: &config.Gateway{RouterID: netip.MustParseAddr("10.255.0.1"), ListenPort: -1, Table: 4242, Protocol: 242}}},
	}}
	ctx := context.Background()
	if err := role.Apply(ctx, gw, snap); err != nil {
		t.Fatal(err)
	}
	defer gw.Close(ctx)
	if err := gw.Ready(); err != nil {
		t.Fatalf("Ready after apply: %v", err)
	}
	if code := get("/v1/bgp/neighbors", &ns); code != 200 || len(ns) != 0 {
		t.Fatalf("neighbors: status %d, %v", code, ns)
	}
	var rs []GatewayRoute
	if code := get("/v1/bgp/routes", &rs); code != 200 {
		t.Fatalf("routes: status %d", code)
	}
	if len(rs) != 1 || rs[0].Prefix.String() != "10.1.0.0/16" || !rs[0].Local || rs[0].Installed {
		t.Fatalf("routes: %+v, want our own CIDR, local, not in the kernel", rs)
	}

	// A bad config is refused and the running state stays.
	bad := *snap
	bad.Site.Nodes = []config.Node{{Name: "gw", Cloud: "nowhere", Roles: []config.Role{config.RoleGateway}}}
	if err := role.Apply(ctx, gw, &bad); err == nil {
		t.Fatal("want an error for a node in an unknown cloud")
	}
	if code := get("/v1/bgp/routes", &rs); code != 200 || len(rs) != 1 {
		t.Fatalf("after a refused apply: status %d, %v", code, rs)
	}
}
