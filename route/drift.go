package route

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Diff is one route of our protocol whose kernel state differs from what
// the table installed: Want invalid means the kernel holds a route of ours
// we never installed (another tool used our protocol number), Got invalid
// means ours is gone (`ip route del … proto N`).
type Diff struct {
	Dst       netip.Prefix
	Want, Got netip.Addr
}

// Expected and Actual say it for an operator.
func (d Diff) Expected() string { return describe(d.Dst, d.Want) }
func (d Diff) Actual() string   { return describe(d.Dst, d.Got) }

func describe(p netip.Prefix, gw netip.Addr) string {
	if !gw.IsValid() {
		return "absent"
	}
	return Route{p, gw}.String()
}

// Diff compares want (prefix → next hop) with got, sorted by prefix.
func diff(want, got map[netip.Prefix]netip.Addr) []Diff {
	var out []Diff
	for p, w := range want {
		if g, ok := got[p]; !ok || g != w {
			out = append(out, Diff{Dst: p, Want: w, Got: g})
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			out = append(out, Diff{Dst: p, Got: g})
		}
	}
	slices.SortFunc(out, func(a, b Diff) int {
		return cmp.Or(a.Dst.Addr().Compare(b.Dst.Addr()), a.Dst.Bits()-b.Dst.Bits())
	})
	return out
}

// Drift reads the kernel's table (one dump) and lists where our routes
// differ from what this table installed. Between syncs that is exactly
// what someone else changed: a route deleted or replaced by hand, or one
// added with our protocol number.
func (t *Table) Drift() ([]Diff, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errors.New("route: table closed")
	}
	own, foreign, err := t.dump()
	if err != nil {
		return nil, err
	}
	t.seen = &dumped{own, foreign}
	ds := diff(t.installed, own)
	// The kernel drops the routes through an interface that goes down:
	// that is the path failing, which BGP and the link watcher follow,
	// not someone deleting them. Only a route whose next hop is still on
	// a connected network is missing.
	onLink := map[netip.Addr]bool{}
	return slices.DeleteFunc(ds, func(d Diff) bool {
		if d.Got.IsValid() || !d.Want.IsValid() {
			return false
		}
		ok, seen := onLink[d.Want]
		if !seen {
			ok = t.onLink(d.Want)
			onLink[d.Want] = ok
		}
		return !ok
	}), nil
}

// onLink reports whether gw is on a connected network now: the kernel's
// route to it has no gateway of its own.
func (t *Table) onLink(gw netip.Addr) bool {
	rs, err := t.h.RouteGet(gw.AsSlice())
	return err == nil && len(rs) > 0 && rs[0].Gw == nil
}

// dumped is the kernel table as the last Drift read it. The heals that
// follow a check use it instead of a dump each (a full table deleted by
// hand is 100k heals); a Sync or Reconcile, which change the kernel, drop
// it.
type dumped struct {
	own     map[netip.Prefix]netip.Addr
	foreign map[netip.Prefix]bool
}

// Heal puts the route for dst back as this table installed it, or removes
// a route of our protocol for dst that the table never installed. Like
// Sync, it never replaces another protocol's route: a prefix someone took
// with a route of their own stays theirs, and Heal says so.
func (t *Table) Heal(dst netip.Prefix) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errors.New("route: table closed")
	}
	if t.seen == nil {
		own, foreign, err := t.dump()
		if err != nil {
			return err
		}
		t.seen = &dumped{own, foreign}
	}
	own, foreign := t.seen.own, t.seen.foreign
	want, installed := t.installed[dst]
	got, ours := own[dst]
	switch {
	case !installed && ours:
		if err := t.delWith(t.h, Route{dst, got}); err != nil {
			return fmt.Errorf("route: heal: %w", err)
		}
		delete(own, dst)
	case !installed:
		// gone already
	case ours:
		if err := t.h.RouteReplace(t.nl(Route{dst, want})); err != nil {
			t.m.errors.WithLabelValues("replace").Inc()
			return fmt.Errorf("route: heal %v: %w", Route{dst, want}, err)
		}
		t.m.changes.WithLabelValues("replace").Inc()
		own[dst] = want
	case foreign[dst]:
		return fmt.Errorf("route: heal %v: the prefix is held by another route now; not replacing it", Route{dst, want})
	default:
		// RouteAdd is NLM_F_EXCL: a route someone added since the dump
		// is never replaced.
		if err := t.h.RouteAdd(t.nl(Route{dst, want})); err != nil {
			t.m.errors.WithLabelValues("add").Inc()
			t.seen = nil
			return fmt.Errorf("route: heal %v: %w", Route{dst, want}, err)
		}
		t.m.changes.WithLabelValues("add").Inc()
		own[dst] = want
	}
	return nil
}
