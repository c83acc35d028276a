package topology

import (
	"bytes"
	"context"
	"encoding/xml"
	"flag"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/test/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

var at = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// demo is a two-cloud site as it runs: a dedicated line that is down, a
// VPN that carries the traffic, an on-premises neighbor, a drifted edge,
// a dead one, a node the revision does not declare, and a distribution
// with a canary.
func demo() Input {
	f := false
	site := config.Site{
		Name: "demo",
		DNS:  config.DNS{Zone: "cdn.example.test."},
		Clouds: []config.Cloud{
			{Name: "seoul", ASN: 65001, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
			{Name: "tokyo", ASN: 65002, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}},
		},
		Nodes: []config.Node{
			{Name: "seoul-edge-1", Cloud: "seoul", Roles: []config.Role{config.RoleDNS, config.RoleEdge}},
			{Name: "seoul-gw", Cloud: "seoul", Roles: []config.Role{config.RoleGateway}, Gateway: &config.Gateway{Neighbors: []config.ExternalNeighbor{
				{Name: "onprem", Address: netip.MustParseAddr("172.16.0.1")},
				{Name: "backup-router", Address: netip.MustParseAddr("172.16.0.9")},
			}}},
			{Name: "tokyo-edge-1", Cloud: "tokyo", Roles: []config.Role{config.RoleEdge}},
			{Name: "tokyo-edge-2", Cloud: "tokyo", Roles: []config.Role{config.RoleEdge}},
			{Name: "tokyo-gw", Cloud: "tokyo", Roles: []config.Role{config.RoleGateway}},
		},
		Links: []config.Link{
			{Name: "vpn", Kind: config.LinkVPN, A: config.LinkEnd{Node: "seoul-gw"}, B: config.LinkEnd{Node: "tokyo-gw"}},
			{Name: "dx", Kind: config.LinkDedicated, A: config.LinkEnd{Node: "seoul-gw"}, B: config.LinkEnd{Node: "tokyo-gw"}},
		},
	}
	dists := []config.Distribution{
		{Name: "static", Spec: config.Spec{
			Origins:   map[string]config.Origin{"files": {URL: "http://127.0.0.1:9003"}},
			Behaviors: []config.Behavior{{Path: "*", Target: "files"}},
		}},
		{Name: "shop", Spec: config.Spec{
			Aliases: []string{"shop.example.test"},
			Origins: map[string]config.Origin{
				"blue": {URL: "http://127.0.0.1:9001"}, "green": {URL: "http://127.0.0.1:9002"}, "legacy": {URL: "http://127.0.0.1:9004"},
			},
			OriginGroups: map[string]config.OriginGroup{"web": {Members: []string{"blue", "green"}, Active: "blue",
				Canary: &config.Canary{Member: "green", Weight: 10}}},
			Behaviors: []config.Behavior{
				{Path: "/api/*", Target: "web", Cache: &f},
				{Path: "/old/*", Target: "legacy"},
				{Path: "*", Target: "web"},
			},
		}},
	}
	snap := &config.Snapshot{Revision: 7, Hash: "abc", Site: site, Distributions: dists}
	gw := func(name, tunnelPeer, dx, vpnState string) status.NodeStatus {
		return status.NodeStatus{Name: name, Roles: []config.Role{config.RoleGateway}, Revision: 7, Hash: "abc", Healthy: true,
			Report: status.RoleReport{Routes: 3,
				Sessions: []status.PeerState{
					{Peer: "198.18.1.2", Name: "dx", Link: "dedicated", State: dx},
					{Peer: "100.64.0.2", Name: "vpn", Link: "vpn", State: vpnState, Accepted: 1},
				},
				Tunnels: []status.TunnelState{{Interface: "wg-" + tunnelPeer, Peer: tunnelPeer, Up: true, LastHandshake: at.Add(-42 * time.Second)}}}}
	}
	seoul := gw("seoul-gw", "tokyo-gw", "active", "established")
	seoul.Report.Sessions = append(seoul.Report.Sessions, status.PeerState{Peer: "172.16.0.1", Name: "onprem", Link: "external", State: "established", Accepted: 4})
	return Input{
		Snapshot: snap,
		Nodes: map[string]status.NodeStatus{
			"seoul-gw": seoul,
			"tokyo-gw": gw("tokyo-gw", "seoul-gw", "idle", "established"),
			"seoul-edge-1": {Name: "seoul-edge-1", Roles: []config.Role{config.RoleEdge, config.RoleDNS}, Revision: 7, Hash: "abc", Healthy: true,
				Report: status.RoleReport{Requests: 1200, HitRatio: 0.875}},
			"tokyo-edge-1": {Name: "tokyo-edge-1", Roles: []config.Role{config.RoleEdge}, Revision: 6, Hash: "old", Healthy: true,
				Message: "hand-edited", Report: status.RoleReport{Requests: 10, HitRatio: 0.5}},
			"stray": {Name: "stray", Roles: []config.Role{config.RoleDNS}, Revision: 7, Hash: "abc", Healthy: true, Drifted: 2},
		},
		States: map[string]string{"seoul-gw": "current", "tokyo-gw": "current", "seoul-edge-1": "current", "tokyo-edge-1": "drifted"},
		Health: map[string]status.OriginHealth{
			"shop/blue":  {Healthy: true},
			"shop/green": {Healthy: false, Reason: "status 503"},
		},
		At: at,
	}
}

func TestBuild(t *testing.T) {
	g := Build(demo())
	cases := []struct {
		name      string
		got, want any
	}{
		{"clouds", len(g.Clouds), 3},
		{"gateway first", g.Clouds[0].Nodes[0].Name, "seoul-gw"},
		{"stray cloud", g.Clouds[2].Nodes[0].Name, "stray"},
		{"links by name", g.Links[0].Name + "," + g.Links[1].Name, "dx,vpn"},
		{"dx down (one end active, other idle)", g.Links[0].State, Down},
		{"dx session both ends", g.Links[0].Session, "active/idle"},
		{"vpn up", g.Links[1].State, Up},
		{"vpn carries while dx is down", g.Links[1].Carrying && !g.Links[0].Carrying, true},
		{"vpn handshake", g.Links[1].LastHandshake, at.Add(-42 * time.Second)},
		{"vpn accepted both ends", g.Links[1].Accepted, 2},
		{"externals: reported and declared", len(g.External), 2},
		{"declared, not reported", g.External[0], External{Name: "backup-router", Peer: "172.16.0.9", Node: "seoul-gw", State: Unknown}},
		{"reported", g.External[1].State, "established"},
		{"drifted badge", g.Clouds[1].Nodes[1].Drifted, true},
		{"drifted resources badge", g.Clouds[2].Nodes[0].Drifted && g.Clouds[2].Nodes[0].DriftedResources == 2, true},
		{"current, nothing drifted", g.Clouds[0].Nodes[1].Drifted, false},
		{"dead node", g.Clouds[1].Nodes[2].State, "down"},
		{"roles in display order", strings.Join(g.Clouds[0].Nodes[1].Roles, ","), "edge,dns"},
		{"distributions by name", g.Distributions[0].Name, "shop"},
		{"canary route", g.Distributions[0].Behaviors[0].Routes[1], Route{Origin: "green", Use: "canary", Weight: 10}},
		{"direct route", g.Distributions[0].Behaviors[1].Routes[0], Route{Origin: "legacy", Use: "direct"}},
		{"api not cached", g.Distributions[0].Behaviors[0].Cached, false},
		{"green unhealthy", g.Distributions[0].Origins[1].Health, "unhealthy"},
		{"legacy unchecked", g.Distributions[0].Origins[2].Health, "unchecked"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	// Once dx is up, it carries the traffic instead of the VPN.
	in := demo()
	tokyo := in.Nodes["tokyo-gw"]
	tokyo.Report.Sessions[0].State = "established"
	in.Nodes["tokyo-gw"] = tokyo
	g = Build(in)
	if !g.Links[0].Carrying || g.Links[1].Carrying {
		t.Errorf("with dx up: dx carrying %v, vpn carrying %v; want dx only", g.Links[0].Carrying, g.Links[1].Carrying)
	}
}

func TestBuildNothingApplied(t *testing.T) {
	g := Build(Input{At: at})
	var buf bytes.Buffer
	if err := SVG(&buf, g); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "nothing applied yet") {
		t.Errorf("empty picture lacks its title:\n%s", buf.String())
	}
}

// The drawings of the demo site, byte for byte: go test ./topology -update
// rewrites them after a deliberate change (look at them before committing).
func TestGolden(t *testing.T) {
	for _, c := range []struct {
		file   string
		render func(io.Writer, *Graph) error
	}{
		{"demo.svg.golden", SVG},
		{"demo.dot.golden", DOT},
	} {
		var buf bytes.Buffer
		if err := c.render(&buf, Build(demo())); err != nil {
			t.Fatal(err)
		}
		// A second rendering must be identical: nothing depends on map order.
		var again bytes.Buffer
		_ = c.render(&again, Build(demo()))
		if !bytes.Equal(buf.Bytes(), again.Bytes()) {
			t.Fatalf("%s: two renderings of the same graph differ", c.file)
		}
		path := filepath.Join("testdata", c.file)
		if *update {
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./topology -update to create it)", err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s differs from the golden file; if the change is meant, rerun with -update and review the diff.\ngot:\n%s", c.file, buf.String())
		}
	}
}

// The SVG is well-formed XML with every element a test or the page looks for.
func TestSVGWellFormed(t *testing.T) {
	var buf bytes.Buffer
	if err := SVG(&buf, Build(demo())); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	ids := map[string]bool{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Local == "id" {
					if ids[a.Value] {
						t.Errorf("duplicate id %q", a.Value)
					}
					ids[a.Value] = true
				}
			}
		}
	}
	for _, id := range []string{"cloud-seoul", "node-seoul-gw", "node-tokyo-edge-2", "link-dx", "link-vpn", "ext-seoul-gw-onprem",
		"dist-shop", "behavior-shop-0", "origin-shop-green", "node-stray", "ext-seoul-gw-backup-router"} {
		if !ids[id] {
			t.Errorf("SVG lacks id %q", id)
		}
	}
	// The drifted badges: a node on another hash, and one whose resources drifted.
	for _, want := range []string{`<g class="badge drifted">`, `>drifted</text>`, `>drifted: 2</text>`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("SVG lacks %s", want)
		}
	}
}

// Graphviz accepts the DOT output.
func TestDOTAcceptedByGraphviz(t *testing.T) {
	dot := testenv.NeedTool(t, "dot", "graphviz")
	var buf bytes.Buffer
	if err := DOT(&buf, Build(demo())); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dot, "-Tsvg")
	cmd.Stdin = &buf
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("dot: %v\n%s", err, stderr.String())
	}
	if !bytes.Contains(out, []byte("seoul&#45;gw")) && !bytes.Contains(out, []byte("seoul-gw")) {
		t.Errorf("dot's drawing lacks node seoul-gw:\n%s", out)
	}
}
