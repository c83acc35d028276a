package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/status"
)

// The controller's scrape says which of the site's nodes hold a lease and
// whether the store has a quorum; with the store gone it says 0, within
// the scrape.
func TestFleetMetrics(t *testing.T) {
	m := storetest.Start(t)
	c := New(Options{Store: storetest.Open(t, m.Endpoints()), Logger: quiet})
	f := newFleetCollector(c)
	ctx := t.Context()
	if _, err := c.Apply(ctx, bigSite(t, 3), "three nodes"); err != nil {
		t.Fatal(err)
	}
	regCtx, stop := context.WithCancel(context.Background())
	defer stop()
	reg := c.store.Register(regCtx, status.NodeStatus{Name: "n2"}, 30*time.Second, quiet)
	storetest.Eventually(t, 15*time.Second, "n2 registered", func() bool {
		n, _ := c.store.Nodes(ctx)
		_, ok := n["n2"]
		return ok
	})
	want := `
# HELP intercloud_controller_node_live 1 when the site's node holds its lease in the store (it runs and reaches the store), 0 when it does not.
# TYPE intercloud_controller_node_live gauge
intercloud_controller_node_live{cloud="c1",node="n1"} 0
intercloud_controller_node_live{cloud="c1",node="n2"} 1
intercloud_controller_node_live{cloud="c1",node="n3"} 0
# HELP intercloud_controller_store_quorum 1 when the store answers a linearizable read (its etcd cluster has a leader), 0 when it has lost its quorum or no member answers.
# TYPE intercloud_controller_store_quorum gauge
intercloud_controller_store_quorum 1
`
	if err := testutil.CollectAndCompare(f, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	stop()
	<-reg.Done()
	m.Close()
	want = `
# HELP intercloud_controller_store_quorum 1 when the store answers a linearizable read (its etcd cluster has a leader), 0 when it has lost its quorum or no member answers.
# TYPE intercloud_controller_store_quorum gauge
intercloud_controller_store_quorum 0
`
	if err := testutil.CollectAndCompare(f, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
