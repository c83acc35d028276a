package agent

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/role"
)

// Serving closes only once a revision runs and the admin address serves;
// Alive answers through the loop; /metrics says what the node runs
// against what the store wants.
func TestServingAliveAndRevisionMetrics(t *testing.T) {
	roleFactories[roleRecorder] = func(role.Options) (role.Role, error) { return &recorder{}, nil }
	t.Cleanup(func() { delete(roleFactories, roleRecorder) })
	member := storetest.Start(t)
	st := storetest.Open(t, member.Endpoints())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin := storetest.FreeAddr(t)
	a := New(Options{Node: "n1", Store: st, StateDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Admin: admin})
	select {
	case <-a.Serving():
		t.Fatal("serving before Run")
	default:
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	actx, acancel := context.WithTimeout(ctx, 15*time.Second)
	defer acancel()
	if err := a.Alive(actx); err != nil {
		t.Fatalf("Alive with nothing applied yet: %v", err)
	}
	select {
	case <-a.Serving():
		t.Fatal("serving with no revision in the store")
	default:
	}
	snap := snapshotFor(1, "n1")
	snap.Site.Nodes[0].Cloud = "c1"
	if err := st.Commit(ctx, snap, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Serving():
	case <-time.After(30 * time.Second):
		t.Fatal("not serving after revision 1")
	}
	if _, code := get(t, "http://"+admin+"/healthz"); code != http.StatusOK {
		t.Fatalf("serving, but /healthz answers %d", code)
	}
	body, _ := get(t, "http://"+admin+"/metrics")
	for _, want := range []string{
		"intercloud_node_revision 1\n",
		"intercloud_node_desired_revision 1\n",
		"intercloud_node_store_reachable 1\n",
		`intercloud_node_info{cloud="c1",node="n1"} 1`,
		`intercloud_drift_resources{kind="route"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
