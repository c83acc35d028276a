package controller

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/intercloud/intercloud/config"
)

// Through a real store and the API: every example is applied, the stored
// revision exported, and a plan of the exported files against the same
// revision has no changes; a promote afterwards (which sets a field the
// stacks example imports) exports as promoted, and still round-trips.
func TestExportOfStoredRevisionsPlansNoChange(t *testing.T) {
	c, srv := newController(t)
	cli := NewClient(srv.URL, "secret")
	ctx := context.Background()
	for _, dir := range []string{"../examples/quickstart", "../examples/multicloud", "../examples/stacks"} {
		snap := render(t, dir, nil)
		res, err := cli.Apply(ctx, snap, "apply "+dir)
		if err != nil {
			t.Fatal(err)
		}
		exportAndPlan(t, cli, res.Revision)
	}
	// The stacks example is current: promote green, whose group imports
	// its active member.
	cur, _, err := c.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := cloneSnapshot(cur)
	g := next.Distribution("shop").Spec.OriginGroups["web"]
	g.Active = "green"
	next.Distribution("shop").Spec.OriginGroups["web"] = g
	next.Distribution("shop").Override("spec.originGroups.web.active")
	res, err := c.commit(ctx, atOnce, func(*config.Snapshot) (*config.Snapshot, string, error) { return next, "promote", nil })
	if err != nil {
		t.Fatal(err)
	}
	back := exportAndPlan(t, cli, res.Revision)
	if got := back.Distribution("shop").Spec.OriginGroups["web"].Active; got != "green" {
		t.Errorf("exported active %q", got)
	}
	// An earlier revision exports too (--revision).
	exportAndPlan(t, cli, res.Revision-1)
}

// exportAndPlan exports revision rev to a new directory, loads it, and
// checks that it renders to rev's hash and that a plan against the
// current revision says the same as a plan of rev's own snapshot.
func exportAndPlan(t *testing.T, cli *Client, rev int64) *config.Snapshot {
	t.Helper()
	ctx := context.Background()
	stored, err := cli.Revision(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "export")
	if _, err := config.Export(stored, dir); err != nil {
		t.Fatal(err)
	}
	back := render(t, dir, nil)
	if back.Hash != stored.Hash {
		t.Fatalf("revision %d exports to hash %.12s, stored %.12s", rev, back.Hash, stored.Hash)
	}
	plan, err := cli.Plan(ctx, back)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := cli.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Revision == rev && (plan.Changed || len(plan.Changes) != 0 || len(plan.Impact) != 0) {
		t.Errorf("plan of the export of the current revision %d: %+v", rev, plan)
	}
	if cur.Revision != rev && !slices.ContainsFunc(plan.Changes, func(config.Change) bool { return true }) {
		t.Errorf("an earlier revision plans no change")
	}
	return back
}
