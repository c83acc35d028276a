package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/route"
)

// Links as paths edges choose (config.LinkPath): where this gateway ends
// several links to one cloud, the routes learned over each link also go
// to a kernel table of the link's own, and rules send the packets an edge
// marked for the link (its DSCP; the replies by connection mark) there.
// The main table keeps BGP's best paths for everything unmarked.

// LinkPath is one link's table and marks, as Config carries them.
type LinkPath struct {
	Link  string
	TOS   int
	Mark  uint32
	Table int
}

// linkPathsOf derives the node's link paths from the site.
func linkPathsOf(site *config.Site, node string) []LinkPath {
	var out []LinkPath
	for _, p := range site.LinkPathsOf(node) {
		out = append(out, LinkPath{Link: p.Link, TOS: p.TOS(), Mark: p.Mark(), Table: p.Table})
	}
	return out
}

// linkState is the loop's part for link paths.
type linkState struct {
	tables map[string]*route.Table // by link name
	rules  *route.Rules
	err    error // what the last commit or sync could not apply
}

// commitLinks opens the tables of new link paths, closes those of gone
// ones, and installs the rules. Errors are kept for Ready.
func (g *Gateway) commitLinks(ctx context.Context, st *state, cfg Config) {
	ls := &st.links
	var errs []error
	want := map[string]LinkPath{}
	for _, lp := range cfg.LinkPaths {
		want[lp.Link] = lp
	}
	rc := cfg.Route.WithDefaults()
	for name, t := range ls.tables {
		lp, ok := want[name]
		if ok && t.Config().Table == lp.Table && t.Config().Protocol == rc.Protocol && t.Config().GracefulRestart == rc.GracefulRestart {
			continue
		}
		if err := t.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("link %s: close table: %w", name, err))
		}
		delete(ls.tables, name)
	}
	for _, lp := range cfg.LinkPaths {
		if ls.tables[lp.Link] != nil {
			continue
		}
		// The link tables' own counters stay unregistered: the main
		// table's series have no label to tell tables apart.
		t, err := route.New(route.Config{Table: lp.Table, Protocol: rc.Protocol, GracefulRestart: rc.GracefulRestart},
			route.Options{Logger: g.log.With("link", lp.Link)})
		if err != nil {
			errs = append(errs, fmt.Errorf("link %s: open table %d: %w", lp.Link, lp.Table, err))
			continue
		}
		if ls.tables == nil {
			ls.tables = map[string]*route.Table{}
		}
		ls.tables[lp.Link] = t
	}
	var rules []route.LinkRule
	for _, lp := range cfg.LinkPaths {
		rules = append(rules, route.LinkRule{Name: lp.Link, TOS: lp.TOS, Mark: lp.Mark, Table: lp.Table})
	}
	if ls.rules == nil && len(rules) > 0 {
		r, err := route.NewRules(route.RulesConfig{Priority: config.LinkRulePriority, Protocol: rc.Protocol,
			MarkMask: config.LinkMarkMask, NftTable: nftTable})
		if err != nil {
			errs = append(errs, fmt.Errorf("link rules: %w", err))
		}
		ls.rules = r
	}
	if ls.rules != nil {
		if err := ls.rules.Sync(rules); err != nil {
			errs = append(errs, err)
		} else if len(rules) > 0 {
			g.log.Info("gateway: link paths installed", "links", len(rules))
		}
	}
	ls.err = errors.Join(errs...)
	if ls.err != nil {
		g.log.Error("gateway: link paths", "error", ls.err)
	}
}

// nftTable is the nftables table (family inet) of the link marks.
const nftTable = "intercloud_links"

// syncLinks installs in each link's table the routes learned over it
// (whether or not BGP chose them as best). It reads the whole Loc-RIB:
// only gateways with link paths pay for it.
func (g *Gateway) syncLinks(ctx context.Context, st *state, full bool) {
	ls := &st.links
	if full && ls.rules != nil {
		// Rules changed behind our back go back (the tables' routes are
		// put back by their Reconcile below).
		if changed, err := ls.rules.Reconcile(); err != nil {
			g.log.Warn("gateway: reconcile link rules", "error", err)
		} else if changed {
			g.log.Warn("gateway: link rules or their nftables table were changed behind our back: put back")
		}
	}
	if len(ls.tables) == 0 {
		return
	}
	all, err := g.bgp.Paths(ctx)
	if err != nil {
		if !errors.Is(err, bgp.ErrNotRunning) && ctx.Err() == nil {
			g.log.Warn("gateway: read paths for the link tables", "error", err)
		}
		return
	}
	by := map[string][]route.Route{}
	for _, p := range all {
		if p.Local || p.Neighbor == "" || !p.NextHop.IsValid() || ls.tables[p.Neighbor] == nil {
			continue
		}
		by[p.Neighbor] = append(by[p.Neighbor], route.Route{Dst: p.Prefix, Gw: p.NextHop})
	}
	for name, t := range ls.tables {
		install := t.Sync
		if full {
			install = t.Reconcile
		}
		if err := install(ctx, by[name]); err != nil && ctx.Err() == nil {
			g.log.Warn("gateway: install the routes learned over a link in its table", "link", name, "error", err)
		}
	}
}

// close removes the link tables and rules.
func (ls *linkState) close(ctx context.Context) error {
	var errs []error
	for name, t := range ls.tables {
		if err := t.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("link %s: %w", name, err))
		}
	}
	ls.tables = nil
	if ls.rules != nil {
		if err := ls.rules.Close(); err != nil {
			errs = append(errs, err)
		}
		ls.rules = nil
	}
	return errors.Join(errs...)
}
