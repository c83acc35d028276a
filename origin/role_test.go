package origin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/role"
)

func originSnap(root, listen string, rules ...config.CacheRule) *config.Snapshot {
	return &config.Snapshot{Revision: 1, Site: config.Site{Nodes: []config.Node{{
		Name: "o1", Roles: []config.Role{config.RoleOrigin},
		Origin: &config.OriginRole{Root: root, Listen: listen, CacheRules: rules},
	}}}}
}

func TestOriginRole(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "index.html"), []byte("hi"), 0o644)
	if _, err := Deploy(root, src, "blue"); err != nil {
		t.Fatal(err)
	}
	if err := Activate(root, "blue"); err != nil {
		t.Fatal(err)
	}
	r, err := NewRole(role.Options{Node: "o1",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	ctx := context.Background()
	get := func(addr string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/index.html")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Cache-Control")
	}

	a1 := storetest.FreeAddr(t)
	if err := role.Apply(ctx, r, originSnap(root, a1)); err != nil {
		t.Fatal(err)
	}
	if err := r.Ready(); err != nil {
		t.Fatalf("not ready: %v", err)
	}
	if code, cc := get(a1); code != 200 || cc != "" {
		t.Fatalf("first apply: %d %q", code, cc)
	}
	// New rules: swapped in place on the same listener.
	if err := role.Apply(ctx, r, originSnap(root, a1, config.CacheRule{Path: "*", CacheControl: "no-cache"})); err != nil {
		t.Fatal(err)
	}
	if code, cc := get(a1); code != 200 || cc != "no-cache" {
		t.Fatalf("after new rules: %d %q", code, cc)
	}
	// A bad snapshot is refused and the old state keeps serving.
	if err := role.Apply(ctx, r, originSnap(root, a1, config.CacheRule{Path: "*"})); err == nil {
		t.Error("invalid cache rule applied")
	}
	if code, cc := get(a1); code != 200 || cc != "no-cache" {
		t.Fatalf("after a refused apply: %d %q", code, cc)
	}
	// A new address is bound before the old one is let go.
	a2 := storetest.FreeAddr(t)
	if err := role.Apply(ctx, r, originSnap(root, a2)); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(a2); code != 200 {
		t.Fatalf("after moving: %d", code)
	}
	if _, err := http.Get("http://" + a1 + "/index.html"); err == nil {
		t.Error("the old address still serves")
	}
	noOrigin := originSnap(root, a2)
	noOrigin.Site.Nodes[0].Origin = nil
	if err := role.Apply(ctx, r, noOrigin); err == nil {
		t.Error("a node without an origin section was applied")
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
