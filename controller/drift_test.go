package controller

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/status"
)

// GET /v1/drift shows each node's last check from its registration (down
// nodes as down) and the heal log newest first; a node the site does not
// have is a 400; the check needs the token.
func TestDriftEndpoint(t *testing.T) {
	c, srv := newController(t)
	ctx := t.Context()
	snap := bigSite(t, 3)
	res, err := c.Apply(ctx, snap, "drift")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Second)
	rep := &status.DriftReport{Checked: at, Resources: []status.DriftResource{
		{Kind: status.DriftRoute, ID: "10.2.0.0/16", Expected: "10.2.0.0/16 via 10.0.0.2", Actual: "absent", State: status.DriftSuspended},
		{Kind: status.DriftFile, ID: "v1/a", Expected: "e", Actual: "absent", State: status.DriftHealed},
	}}
	regCtx, stop := context.WithCancel(context.Background())
	defer stop()
	for _, name := range []string{"n1", "n2"} {
		st := status.NodeStatus{Name: name, Roles: []config.Role{config.RoleDNS}, Revision: res.Revision, Hash: res.Hash, Healthy: true}
		if name == "n1" {
			st.Drift, st.Drifted = rep, 1
		}
		c.store.Register(regCtx, st, 30*time.Second, quiet)
	}
	for i, state := range []string{status.DriftHealed, status.DriftHealed, status.DriftSuspended} {
		ev := status.DriftEvent{Time: at.Add(time.Duration(i) * time.Second), Node: "n1", Kind: status.DriftRoute, ID: "10.2.0.0/16", State: state}
		if err := c.store.PutDriftEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	storetest.Eventually(t, 10*time.Second, "both nodes registered", func() bool {
		n, _ := c.store.Nodes(ctx)
		return len(n) == 2
	})
	cli := NewClient(srv.URL, "")
	d, err := cli.Drift(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Nodes) != 3 || d.Nodes[0].Name != "n1" || !d.Nodes[0].Live || d.Nodes[0].Drifted != 1 || len(d.Nodes[0].Resources) != 2 ||
		!d.Nodes[1].Live || d.Nodes[1].Drifted != 0 || d.Nodes[2].Live {
		t.Fatalf("nodes: %+v", d.Nodes)
	}
	if len(d.Events) != 3 || d.Events[0].State != status.DriftSuspended || !d.Events[0].Time.After(d.Events[2].Time) {
		t.Fatalf("events: %+v", d.Events)
	}
	if one, err := cli.Drift(ctx, "n2"); err != nil || len(one.Nodes) != 1 || one.Nodes[0].Name != "n2" || len(one.Events) != 0 {
		t.Fatalf("one node: %+v, %v", one, err)
	}
	if _, err := cli.Drift(ctx, "nope"); err == nil {
		t.Fatal("an unknown node answered")
	}
	resp, err := http.Post(srv.URL+"/v1/drift/check", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a check without the token: %s", resp.Status)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Nodes[0].Name != "n1" || st.Nodes[0].Drifted != 1 || st.Nodes[1].Drifted != 0 {
		t.Fatalf("status carries the drift count: %+v, %v", st, err)
	}
}

// A node whose admin address names no host (":port") is asked for its
// drift check, and health-checked, on its own address: the URL comes from
// config.Node.AdminURL, not "http://" + the listen address.
func TestHostlessAdminAddress(t *testing.T) {
	// On 127.0.0.2: "http://:port" would reach 127.0.0.1 (Go dials
	// localhost for an empty host), which hides the missing host.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	node := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/drift/check" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(status.DriftReport{Resources: []status.DriftResource{
			{Kind: status.DriftRoute, ID: "10.2.0.0/16", State: status.DriftSuspended}}})
	}))
	node.Listener.Close()
	node.Listener = ln
	node.Start()
	defer node.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	c, _ := newController(t)
	ctx := t.Context()
	snap := bigSite(t, 1)
	snap.Site.Nodes[0].Roles = append(snap.Site.Nodes[0].Roles, config.RoleEdge)
	snap.Site.Nodes[0].Address = "127.0.0.2"
	snap.Site.Nodes[0].Listen.Admin = ":" + port
	snap.Site.Nodes[0].Listen.HTTP = "127.0.0.1:18080"
	res, err := c.Apply(ctx, snap, "hostless admin")
	if err != nil {
		t.Fatal(err)
	}
	regCtx, stop := context.WithCancel(context.Background())
	defer stop()
	c.store.Register(regCtx, status.NodeStatus{Name: "n1", Roles: snap.Site.Nodes[0].Roles, Revision: res.Revision, Hash: res.Hash, Healthy: true}, 30*time.Second, quiet)
	storetest.Eventually(t, 10*time.Second, "n1 registered", func() bool {
		n, _ := c.store.Nodes(ctx)
		return len(n) == 1
	})
	d, err := c.CheckDrift(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Nodes) != 1 || d.Nodes[0].Error != "" || d.Nodes[0].Drifted != 1 {
		t.Fatalf("check of a node with admin %q: %+v", snap.Site.Nodes[0].Listen.Admin, d.Nodes)
	}
	want := "http://127.0.0.2:" + port + "/healthz"
	for _, tg := range targetsOf(snap) {
		if tg.dist == status.EdgeHealthDistribution && tg.url != want {
			t.Fatalf("edge health target %q, want %q", tg.url, want)
		}
	}
}
