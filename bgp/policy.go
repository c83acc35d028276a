package bgp

import (
	"net/netip"

	"github.com/osrg/gobgp/v4/api"
)

// GoBGP applies import and export policies globally unless a peer is a
// route-server client, so both policies are global and each import
// statement matches one neighbor by a neighbor set.
const (
	importPolicy = "intercloud-import"
	exportPolicy = "intercloud-export"
)

// policies renders the import and export policies of cfg. A prefix set may
// not mix families in GoBGP, so every set is split by family.
func policies(cfg *Config) *api.SetPoliciesRequest {
	req := &api.SetPoliciesRequest{}
	addSets := func(base string, ps []netip.Prefix, orLonger bool) []string {
		var names []string
		for _, fam := range []struct {
			tag  string
			is4  bool
			bits uint32
		}{{"4", true, 32}, {"6", false, 128}} {
			var list []*api.Prefix
			for _, p := range ps {
				if p.Addr().Is4() != fam.is4 {
					continue
				}
				max := uint32(p.Bits())
				if orLonger {
					max = fam.bits
				}
				list = append(list, &api.Prefix{IpPrefix: p.String(), MaskLengthMin: uint32(p.Bits()), MaskLengthMax: max})
			}
			if len(list) == 0 {
				continue
			}
			name := base + "-v" + fam.tag
			req.DefinedSets = append(req.DefinedSets, &api.DefinedSet{
				DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: name, Prefixes: list,
			})
			names = append(names, name)
		}
		return names
	}

	// Export: our own CIDRs exactly, so learned routes are never passed on
	// (no transit between clouds) and nothing longer leaks.
	exp := &api.Policy{Name: exportPolicy}
	// GoBGP runs the global import policy over locally originated paths
	// too: our own CIDRs must pass it.
	imp := &api.Policy{Name: importPolicy}
	for _, set := range addSets("own", cfg.Announce, false) {
		exp.Statements = append(exp.Statements, &api.Statement{
			Name:       "export-" + set,
			Conditions: &api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: set}},
			Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
		})
		imp.Statements = append(imp.Statements, &api.Statement{
			Name: "local-" + set,
			Conditions: &api.Conditions{
				PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: set},
				RouteType: api.Conditions_ROUTE_TYPE_LOCAL,
			},
			Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
		})
	}

	// Import: per neighbor, what its cloud (or its declaration) allows, or
	// longer, with the local preference of the link kind.
	for _, n := range cfg.Neighbors {
		nset := "nb-" + n.Address.String()
		req.DefinedSets = append(req.DefinedSets, &api.DefinedSet{
			DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: nset,
			List: []string{netip.PrefixFrom(n.Address, n.Address.BitLen()).String()},
		})
		for _, pset := range addSets("allow-"+n.Address.String(), n.Allowed, true) {
			imp.Statements = append(imp.Statements, &api.Statement{
				Name: "import-" + pset,
				Conditions: &api.Conditions{
					NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: nset},
					PrefixSet:   &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: pset},
				},
				Actions: &api.Actions{
					RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
					LocalPref:   &api.LocalPrefAction{Value: n.Kind.LocalPref()},
				},
			})
		}
	}
	req.Policies = []*api.Policy{imp, exp}
	return req
}

// assignments binds both policies to the global RIB, rejecting what they
// do not accept.
func assignments() []*api.PolicyAssignment {
	return []*api.PolicyAssignment{
		{
			Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_IMPORT,
			Policies: []*api.Policy{{Name: importPolicy}}, DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
		},
		{
			Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_EXPORT,
			Policies: []*api.Policy{{Name: exportPolicy}}, DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
		},
	}
}
