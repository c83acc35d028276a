package controller

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/store"
)

// bigSite declares n dns nodes named n1..n<n>, in numeric order: their
// name order ("n1", "n10", "n100", ...) is another one.
func bigSite(t *testing.T, n int) *config.Snapshot {
	t.Helper()
	site := config.Site{Name: "big", DNS: config.DNS{Zone: "big.example.test."},
		Clouds: []config.Cloud{{Name: "c1", ASN: 65001}}}
	for i := 1; i <= n; i++ {
		addr := fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
		site.Nodes = append(site.Nodes, config.Node{Name: fmt.Sprintf("n%d", i), Cloud: "c1", Roles: []config.Role{config.RoleDNS},
			Address: addr, Listen: config.Listen{DNS: addr + ":53", Admin: addr + ":9180"}})
	}
	snap, err := config.NewSnapshot(site, nil)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// registerAll registers every status on its lease, as agents do, and
// waits until the store holds them all; the leases end with the test.
func registerAll(t *testing.T, c *Controller, sts []status.NodeStatus) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	var regs []*store.Registration
	for _, st := range sts {
		regs = append(regs, c.store.Register(ctx, st, 30*time.Second, quiet))
	}
	t.Cleanup(func() {
		stop()
		for _, r := range regs {
			<-r.Done()
		}
	})
	storetest.Eventually(t, 60*time.Second, "every registration written", func() bool {
		got, _, err := c.store.NodesPage(t.Context(), "", 0)
		return err == nil && len(got) == len(sts)
	})
}

// 1,000 nodes registered in a real etcd, walked page by page through the
// API: every node once, in name order, each page reading about its own
// size of registrations.
func TestStatusPagesThroughAThousandNodes(t *testing.T) {
	const nodes = 1000
	c, srv := newController(t)
	ctx := t.Context()
	snap := bigSite(t, nodes)
	res, err := c.Apply(ctx, snap, "big")
	if err != nil {
		t.Fatal(err)
	}
	// Every node registers on its lease, as an agent does, except every
	// hundredth (down); n7 runs an older revision; a node the site does
	// not declare registers too and must not show.
	var regs []status.NodeStatus
	register := func(st status.NodeStatus) { regs = append(regs, st) }
	var want []string
	for _, n := range snap.Site.Nodes {
		want = append(want, n.Name)
	}
	slices.Sort(want)
	down := map[string]bool{}
	for i, name := range want {
		if i%100 == 99 {
			down[name] = true
			continue
		}
		st := status.NodeStatus{Name: name, Roles: []config.Role{config.RoleDNS}, Revision: res.Revision, Hash: res.Hash, Healthy: true}
		if name == "n7" {
			st.Revision, st.Hash = 0, "older"
		}
		register(st)
	}
	register(status.NodeStatus{Name: "n5x", Revision: res.Revision, Hash: res.Hash})
	registerAll(t, c, regs)

	cli := NewClient(srv.URL, "")
	for _, limit := range []int{1, 7, 100, 500, 1000} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			var got []string
			pages, converged := 0, true
			for after := ""; ; pages++ {
				before := testutil.ToFloat64(c.metrics.statusRegistrations)
				page, err := cli.StatusPage(ctx, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				// The registrations that follow the page's first name are
				// read, in batches of the page's size: one batch unless a
				// node the site does not declare sits in the page.
				if read := testutil.ToFloat64(c.metrics.statusRegistrations) - before; read > float64(2*limit) {
					t.Fatalf("page after %q of %d nodes read %v registrations", after, limit, read)
				}
				if len(page.Nodes) > limit || page.Total != nodes || page.Revision != res.Revision {
					t.Fatalf("page after %q: %d nodes of %d, revision %d", after, len(page.Nodes), page.Total, page.Revision)
				}
				for _, n := range page.Nodes {
					got = append(got, n.Name)
					if wantState := map[bool]string{true: "down", false: "current"}[down[n.Name]]; n.Name != "n7" && n.State != wantState {
						t.Fatalf("node %s: state %s, want %s", n.Name, n.State, wantState)
					}
				}
				converged = converged && page.Converged
				if page.Next == "" {
					break
				}
				if page.Next != got[len(got)-1] {
					t.Fatalf("next %q is not the page's last node %q", page.Next, got[len(got)-1])
				}
				after = page.Next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("walk of %d pages: %d nodes, first %v; want every node once in name order", pages, len(got), got[:min(5, len(got))])
			}
			if converged {
				t.Fatal("n7 runs an older revision, yet every page says converged")
			}
		})
	}

	// One page of the default size reads its own registrations, not the
	// fleet's.
	before := testutil.ToFloat64(c.metrics.statusRegistrations)
	page, err := cli.StatusPage(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if read := testutil.ToFloat64(c.metrics.statusRegistrations) - before; len(page.Nodes) != DefaultStatusLimit || read > DefaultStatusLimit {
		t.Fatalf("default page: %d nodes, %v registrations read", len(page.Nodes), read)
	}

	// The client's whole walk, as status --wait sees it.
	all, err := cli.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range all.Nodes {
		names = append(names, n.Name)
	}
	if !slices.Equal(names, want) || all.Converged || all.Next != "" {
		t.Fatalf("whole status: %d nodes, converged %v, next %q", len(names), all.Converged, all.Next)
	}
}

func TestStatusLimitIsChecked(t *testing.T) {
	_, srv := newController(t)
	cases := []struct {
		query string
		code  int
		says  string
	}{
		{"", http.StatusOK, ""},
		{"?limit=1", http.StatusOK, ""},
		{"?limit=1000", http.StatusOK, ""},
		{"?after=zzz", http.StatusOK, ""},
		{"?limit=1001", http.StatusBadRequest, "above the maximum page of 1000 nodes"},
		{"?limit=0", http.StatusBadRequest, "not a positive number"},
		{"?limit=-3", http.StatusBadRequest, "not a positive number"},
		{"?limit=ten", http.StatusBadRequest, "not a positive number"},
	}
	for _, c := range cases {
		resp, err := http.Get(srv.URL + "/v1/status" + c.query)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(body), c.says) {
			t.Errorf("GET /v1/status%s: %d %s, want %d saying %q", c.query, resp.StatusCode, body, c.code, c.says)
		}
	}
}
