package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/status"
)

var _ role.Drifter = (*Gateway)(nil)

// Drift lists the kernel routes of our protocol that differ from what the
// gateway installed, the tunnel settings that differ from what it applied,
// and the BGP neighbors and policies GoBGP runs that differ from what it
// applied (role.Drifter). The agent calls it between revisions; the route
// table and the vpn manager serialize it with the loop's syncs.
func (g *Gateway) Drift(ctx context.Context) ([]status.DriftResource, error) {
	var out []status.DriftResource
	var errs []error
	if t := g.table.Load(); t != nil {
		diffs, err := t.Drift()
		if err != nil {
			errs = append(errs, fmt.Errorf("gateway: %w", err))
		}
		for _, d := range diffs {
			out = append(out, status.DriftResource{Kind: status.DriftRoute, ID: d.Dst.String(), Expected: d.Expected(), Actual: d.Actual()})
		}
	}
	diffs, err := g.vpn.Drift()
	if err != nil {
		errs = append(errs, fmt.Errorf("gateway: %w", err))
	}
	for _, d := range diffs {
		out = append(out, status.DriftResource{Kind: status.DriftWireguard, ID: d.ID(), Expected: d.Expected, Actual: d.Actual})
	}
	bd, err := g.bgp.Drift(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("gateway: %w", err))
	}
	for _, d := range bd {
		out = append(out, status.DriftResource{Kind: status.DriftBGP, ID: d.What, Expected: d.Expected, Actual: d.Actual})
	}
	return out, errors.Join(errs...)
}

// Heal puts one route or one tunnel back (role.Drifter). A tunnel is
// re-set whole, whatever setting of it drifted.
func (g *Gateway) Heal(ctx context.Context, r status.DriftResource) error {
	switch r.Kind {
	case status.DriftRoute:
		p, err := netip.ParsePrefix(r.ID)
		if err != nil {
			return fmt.Errorf("gateway: heal route %q: %w", r.ID, err)
		}
		t := g.table.Load()
		if t == nil {
			return errors.New("gateway: heal route: no kernel table open")
		}
		return t.Heal(p)
	case status.DriftWireguard:
		iface, _, _ := strings.Cut(r.ID, " ")
		return g.vpn.Heal(ctx, iface)
	case status.DriftBGP:
		// The speaker is put back whole: one heal covers every part.
		return g.bgp.Heal(ctx)
	}
	return fmt.Errorf("gateway: cannot heal a %s", r.Kind)
}
