package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/status"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newController(t *testing.T) (*Controller, *httptest.Server) {
	t.Helper()
	m := storetest.Start(t)
	s := storetest.Open(t, m.Endpoints())
	c := New(Options{Store: s, Logger: quiet, Token: "secret"})
	mux := http.NewServeMux()
	c.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return c, srv
}

func dur(d time.Duration) config.Duration { return config.Duration(d) }

// site returns a small valid site and a distribution whose blue and green
// origins are the given URLs, both health-checked every 50ms.
func testSnapshot(t *testing.T, blue, green string, active string) *config.Snapshot {
	t.Helper()
	site := config.Site{
		Name:   "t",
		DNS:    config.DNS{Zone: "cdn.example.test."},
		Clouds: []config.Cloud{{Name: "c1", ASN: 65001}},
		Nodes: []config.Node{{Name: "e1", Cloud: "c1", Roles: []config.Role{config.RoleEdge}, Address: "127.0.0.1",
			Listen: config.Listen{HTTP: "127.0.0.1:18080", Admin: "127.0.0.1:19180"}}},
	}
	health := &config.Health{Path: "/healthz", Interval: dur(50 * time.Millisecond), Timeout: dur(40 * time.Millisecond), Healthy: 1, Unhealthy: 2}
	d := config.Distribution{Name: "shop", Spec: config.Spec{
		Origins: map[string]config.Origin{
			"blue":  {URL: blue, Health: health},
			"green": {URL: green, Health: health},
		},
		OriginGroups: map[string]config.OriginGroup{"web": {Members: []string{"blue", "green"}, Active: active}},
		Behaviors:    []config.Behavior{{Path: "*", Target: "web"}},
	}}
	snap, err := config.NewSnapshot(site, []config.Distribution{d})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// origin is a real HTTP origin whose health can be switched off.
type origin struct {
	*httptest.Server
	down atomic.Bool
}

func newOrigin(t *testing.T) *origin {
	o := &origin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(o.Close)
	return o
}

func TestApplyIsIdempotentAndRollbackAddsRevisions(t *testing.T) {
	c, _ := newController(t)
	ctx := context.Background()
	blue, green := newOrigin(t), newOrigin(t)
	s1 := testSnapshot(t, blue.URL, green.URL, "blue")
	res, err := c.Apply(ctx, s1, "first")
	if err != nil || !res.Changed || res.Revision != 1 {
		t.Fatalf("first apply: %+v %v", res, err)
	}
	res, err = c.Apply(ctx, testSnapshot(t, blue.URL, green.URL, "blue"), "again")
	if err != nil || res.Changed || res.Revision != 1 {
		t.Fatalf("second apply of the same state must be a no-op: %+v %v", res, err)
	}
	s2 := testSnapshot(t, blue.URL, green.URL, "green")
	plan, err := c.Plan(ctx, s2)
	if err != nil || !plan.Changed || len(plan.Changes) != 1 || !strings.Contains(strings.Join(plan.Changes[0].Fields, " "), "active") {
		t.Fatalf("plan: %+v %v", plan, err)
	}
	if res, err = c.Apply(ctx, s2, "switch"); err != nil || res.Revision != 2 {
		t.Fatalf("apply green: %+v %v", res, err)
	}
	res, err = c.Rollback(ctx, 0, false)
	if err != nil || res.Revision != 3 || !res.Changed {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	cur, _, _ := c.Current(ctx)
	if cur.Hash != s1.Hash || cur.Reason != "rollback to revision 1" {
		t.Fatalf("after rollback: hash %s reason %q, want %s", cur.Hash, cur.Reason, s1.Hash)
	}
	hist, err := c.store.History(ctx)
	if err != nil || len(hist) != 3 {
		t.Fatalf("history: %+v %v", hist, err)
	}
}

func TestInvalidSnapshotWritesNothing(t *testing.T) {
	c, _ := newController(t)
	ctx := context.Background()
	good := testSnapshot(t, "http://127.0.0.1:1", "http://127.0.0.1:2", "blue")
	if _, err := c.Apply(ctx, good, "good"); err != nil {
		t.Fatal(err)
	}
	bad := cloneSnapshot(good)
	bad.Distributions[0].Spec.Behaviors[0].Target = "nowhere"
	if _, err := c.Apply(ctx, bad, "bad"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad apply: got %v, want ErrInvalid", err)
	}
	cur, _, _ := c.Current(ctx)
	if cur.Revision != 1 || cur.Hash != good.Hash {
		t.Fatalf("a bad apply changed the store: revision %d", cur.Revision)
	}
}

func TestMutatingCallsNeedTheToken(t *testing.T) {
	c, srv := newController(t)
	ctx := context.Background()
	snap := testSnapshot(t, "http://127.0.0.1:1", "http://127.0.0.1:2", "blue")
	for _, tok := range []string{"", "wrong"} {
		cli := NewClient(srv.URL, tok)
		if _, err := cli.Apply(ctx, snap, "x"); err == nil || !strings.Contains(err.Error(), "token") {
			t.Fatalf("apply with token %q: %v", tok, err)
		}
		if _, err := cli.Invalidate(ctx, "shop", []string{"/"}); err == nil {
			t.Fatalf("invalidate with token %q succeeded", tok)
		}
		if _, err := cli.Rollback(ctx, 1, false); err == nil {
			t.Fatalf("rollback with token %q succeeded", tok)
		}
	}
	if cur, _, _ := c.Current(ctx); cur != nil {
		t.Fatalf("unauthorised calls wrote revision %d", cur.Revision)
	}
	// Reads stay open, and the right token works.
	if _, err := NewClient(srv.URL, "").History(ctx); err != nil {
		t.Fatalf("history without token: %v", err)
	}
	if res, err := NewClient(srv.URL, "secret").Apply(ctx, snap, "x"); err != nil || res.Revision != 1 {
		t.Fatalf("apply with token: %+v %v", res, err)
	}
}

func TestPromoteChecksHealthAndAutoHealNeverFlaps(t *testing.T) {
	c, srv := newController(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cli := NewClient(srv.URL, "secret")
	blue, green := newOrigin(t), newOrigin(t)
	green.down.Store(true)
	if _, err := c.Apply(ctx, testSnapshot(t, blue.URL, green.URL, "blue"), "init"); err != nil {
		t.Fatal(err)
	}
	go c.RunHealth(ctx)
	healthy := func(origin string, want bool) func() bool {
		return func() bool {
			h, known, _ := c.healthyNow("shop", origin)
			return known && h == want
		}
	}
	storetest.Eventually(t, 10*time.Second, "green probed unhealthy", healthy("green", false))

	_, err := cli.Promote(ctx, PromoteRequest{Distribution: "shop", Group: "web", Origin: "green"})
	if err == nil || !strings.Contains(err.Error(), "unhealthy") {
		t.Fatalf("promote to an unhealthy origin: %v", err)
	}
	green.down.Store(false)
	storetest.Eventually(t, 10*time.Second, "green healthy", healthy("green", true))
	res, err := cli.Promote(ctx, PromoteRequest{Distribution: "shop", Group: "web", Origin: "green", Weight: 10})
	if err != nil || !res.Changed {
		t.Fatalf("canary: %+v %v", res, err)
	}
	cur, _, _ := c.Current(ctx)
	if g := cur.Distributions[0].Spec.OriginGroups["web"]; g.Active != "blue" || g.Canary == nil || g.Canary.Weight != 10 {
		t.Fatalf("canary not recorded: %+v", g)
	}
	// Green dies during the canary: the controller stops it on its own.
	green.down.Store(true)
	storetest.Eventually(t, 10*time.Second, "canary stopped", func() bool {
		cur, _, _ := c.Current(ctx)
		return cur.Distributions[0].Spec.OriginGroups["web"].Canary == nil
	})
	cur, _, _ = c.Current(ctx)
	if !strings.HasPrefix(cur.Reason, "auto-heal shop") {
		t.Fatalf("auto-heal reason: %q", cur.Reason)
	}
	// Promote green fully, then kill it: traffic moves to blue, and stays
	// there when green comes back.
	green.down.Store(false)
	storetest.Eventually(t, 10*time.Second, "green healthy again", healthy("green", true))
	if _, err := cli.Promote(ctx, PromoteRequest{Distribution: "shop", Group: "web", Origin: "green", KeepCache: true}); err != nil {
		t.Fatal(err)
	}
	green.down.Store(true)
	storetest.Eventually(t, 10*time.Second, "auto-heal to blue", func() bool {
		cur, _, _ := c.Current(ctx)
		return cur.Distributions[0].Spec.OriginGroups["web"].Active == "blue"
	})
	healed, _, _ := c.Current(ctx)
	if healed.Distributions[0].Spec.OriginGroups["web"].KeepCache {
		t.Fatal("auto-heal kept the unhealthy member's cached copies (keepCache of the operator's last promote)")
	}
	green.down.Store(false)
	storetest.Eventually(t, 10*time.Second, "green back", healthy("green", true))
	time.Sleep(300 * time.Millisecond) // several probe rounds
	cur, _, _ = c.Current(ctx)
	if cur.Revision != healed.Revision {
		t.Fatalf("traffic moved back without an operator: revision %d -> %d (%s)", healed.Revision, cur.Revision, cur.Reason)
	}
}

// TestPromoteKeepCache: each promote sets or clears keepCache for its own
// switch; a canary cannot keep a cache; rollback restores the group as it
// was, keepCache included.
func TestPromoteKeepCache(t *testing.T) {
	c, srv := newController(t)
	ctx := context.Background()
	cli := NewClient(srv.URL, "secret")
	blue, green := newOrigin(t), newOrigin(t)
	if _, err := c.Apply(ctx, testSnapshot(t, blue.URL, green.URL, "blue"), "init"); err != nil {
		t.Fatal(err)
	}
	type group struct {
		active, canary string
		keep           bool
	}
	for _, st := range []struct {
		name     string
		req      PromoteRequest
		rollback bool
		refused  string // a refusal containing this, or ""
		want     group
		reason   string
	}{
		{name: "promote keeping the cache", req: PromoteRequest{Origin: "green", KeepCache: true},
			want: group{"green", "", true}, reason: "promote shop/web: blue -> green (keep cache)"},
		{name: "promote without the flag clears it", req: PromoteRequest{Origin: "blue"},
			want: group{"blue", "", false}, reason: "promote shop/web: green -> blue"},
		{name: "canary cannot keep a cache", req: PromoteRequest{Origin: "green", Weight: 50, KeepCache: true},
			refused: "--keep-cache applies to a full promote", want: group{"blue", "", false}},
		{name: "canary", req: PromoteRequest{Origin: "green", Weight: 50},
			want: group{"blue", "green", false}},
		{name: "canary promoted keeping the cache", req: PromoteRequest{Origin: "green", KeepCache: true},
			want: group{"green", "", true}},
		{name: "rollback restores the canary as it was", rollback: true,
			want: group{"blue", "green", false}},
	} {
		var err error
		if st.rollback {
			_, err = cli.Rollback(ctx, 0, false)
		} else {
			st.req.Distribution, st.req.Group = "shop", "web"
			_, err = cli.Promote(ctx, st.req)
		}
		switch {
		case st.refused != "" && (err == nil || !strings.Contains(err.Error(), st.refused)):
			t.Fatalf("%s: got error %v, want a refusal with %q", st.name, err, st.refused)
		case st.refused == "" && err != nil:
			t.Fatalf("%s: %v", st.name, err)
		}
		cur, _, err := c.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		g := cur.Distributions[0].Spec.OriginGroups["web"]
		got := group{active: g.Active, keep: g.KeepCache}
		if g.Canary != nil {
			got.canary = g.Canary.Member
		}
		if got != st.want {
			t.Fatalf("%s: group %+v, want %+v", st.name, got, st.want)
		}
		if st.reason != "" && cur.Reason != st.reason {
			t.Fatalf("%s: reason %q, want %q", st.name, cur.Reason, st.reason)
		}
	}
}

func TestInvalidationProgress(t *testing.T) {
	c, _ := newController(t)
	ctx := context.Background()
	if _, err := c.Apply(ctx, testSnapshot(t, "http://127.0.0.1:1", "http://127.0.0.1:2", "blue"), "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invalidate(ctx, "nope", []string{"/a"}); !errors.Is(err, ErrRefused) {
		t.Fatalf("unknown distribution: %v", err)
	}
	if _, err := c.Invalidate(ctx, "shop", []string{"/a*b"}); !errors.Is(err, ErrRefused) {
		t.Fatalf("star in the middle: %v", err)
	}
	reg := c.store.Register(ctx, status.NodeStatus{Name: "e1", Roles: []config.Role{config.RoleEdge}}, 5*time.Second, quiet)
	_ = reg
	storetest.Eventually(t, 10*time.Second, "edge registered", func() bool {
		n, _ := c.store.Nodes(ctx)
		return len(n) == 1
	})
	id, err := c.Invalidate(ctx, "shop", []string{"/a", "/static/*"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.Invalidations(ctx)
	if err != nil || len(list) != 1 || list[0].Status != "InProgress" || len(list[0].Edges) != 1 {
		t.Fatalf("before the edge: %+v %v", list, err)
	}
	if err := c.store.MarkInvalidationDone(ctx, id, "e1"); err != nil {
		t.Fatal(err)
	}
	list, _ = c.Invalidations(ctx)
	if list[0].Status != "Completed" {
		t.Fatalf("after the edge: %+v", list[0])
	}
}
