package bgp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/osrg/gobgp/v4/api"
)

// Diff is one part of the speaker's running state that differs from what
// Apply applied: a neighbor (missing, unknown, another ASN or port), a
// policy, a defined set or a policy assignment.
type Diff struct {
	What             string // "neighbor tokyo-gw 10.0.0.2", "policy intercloud-import", ...
	Expected, Actual string
}

// Drift reads the neighbors, policies, defined sets and global policy
// assignments from GoBGP and compares them with what Apply gave it. The
// embedded speaker serves no gRPC API, so only code in this process can
// change it; Drift is the check that nothing did (and that nothing Apply
// did was lost).
func (s *Server) Drift(ctx context.Context) ([]Diff, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil || s.closed {
		return nil, nil
	}
	var out []Diff
	peers, err := s.runningPeers(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range slices.SortedFunc(maps.Keys(s.peers), netip.Addr.Compare) {
		n := s.peers[a]
		want := describeNeighbor(n.ASN, uint32(n.Port))
		got, ok := peers[a]
		if !ok {
			got = "absent"
		}
		if got != want {
			out = append(out, Diff{What: "neighbor " + n.Name + " " + a.String(), Expected: want, Actual: got})
		}
	}
	for _, a := range slices.SortedFunc(maps.Keys(peers), netip.Addr.Compare) {
		if _, ok := s.peers[a]; !ok {
			out = append(out, Diff{What: "neighbor " + a.String(), Expected: "absent", Actual: peers[a]})
		}
	}
	// Compared whenever a config was applied, not only while the
	// assignments are known to be set: after a failed Apply or Heal they
	// may not be, and that is drift to show, not a reason to stop looking.
	if cfg := s.cfg.Load(); cfg != nil {
		pd, err := s.policyDrift(ctx, cfg)
		if err != nil {
			return out, err
		}
		out = append(out, pd...)
	}
	return out, nil
}

// describeNeighbor is what Drift compares of a neighbor. Port 0 is the
// default, which GoBGP reports as 179.
func describeNeighbor(asn, port uint32) string {
	if port == 0 || port == 179 {
		return fmt.Sprintf("AS%d", asn)
	}
	return fmt.Sprintf("AS%d, port %d", asn, port)
}

func (s *Server) runningPeers(ctx context.Context) (map[netip.Addr]string, error) {
	out := map[netip.Addr]string{}
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.Conf == nil {
			return
		}
		a, err := netip.ParseAddr(p.Conf.NeighborAddress)
		if err != nil {
			return
		}
		port := uint32(0)
		if p.Transport != nil {
			port = p.Transport.RemotePort
		}
		out[a] = describeNeighbor(p.Conf.PeerAsn, port)
	})
	if err != nil {
		return nil, fmt.Errorf("bgp: list neighbors: %w", err)
	}
	return out, nil
}

// policyDrift compares GoBGP's policies, defined sets and assignments with
// what cfg renders, in a canonical text form of each.
func (s *Server) policyDrift(ctx context.Context, cfg *Config) ([]Diff, error) {
	want := policies(cfg)
	wantPol, wantSets := map[string]string{}, map[string]string{}
	for _, p := range want.Policies {
		wantPol[p.Name] = policyText(p)
	}
	for _, d := range want.DefinedSets {
		wantSets[d.Name] = setText(d)
	}
	gotPol, gotSets := map[string]string{}, map[string]string{}
	err := s.srv.ListPolicy(ctx, &api.ListPolicyRequest{}, func(p *api.Policy) { gotPol[p.Name] = policyText(p) })
	if err != nil {
		return nil, fmt.Errorf("bgp: list policies: %w", err)
	}
	for _, t := range []api.DefinedType{api.DefinedType_DEFINED_TYPE_PREFIX, api.DefinedType_DEFINED_TYPE_NEIGHBOR} {
		err := s.srv.ListDefinedSet(ctx, &api.ListDefinedSetRequest{DefinedType: t}, func(d *api.DefinedSet) { gotSets[d.Name] = setText(d) })
		if err != nil {
			return nil, fmt.Errorf("bgp: list defined sets: %w", err)
		}
	}
	out := diffTexts("policy ", wantPol, gotPol)
	out = append(out, diffTexts("defined-set ", wantSets, gotSets)...)
	for _, a := range assignments() {
		var got string
		err := s.srv.ListPolicyAssignment(ctx, &api.ListPolicyAssignmentRequest{Name: a.Name, Direction: a.Direction},
			func(p *api.PolicyAssignment) { got = assignmentText(p) })
		if err != nil {
			return nil, fmt.Errorf("bgp: list policy assignments: %w", err)
		}
		if want := assignmentText(a); got != want {
			out = append(out, Diff{What: "assignment " + a.Name + " " + strings.ToLower(strings.TrimPrefix(a.Direction.String(), "POLICY_DIRECTION_")),
				Expected: want, Actual: orAbsent(got)})
		}
	}
	return out, nil
}

func diffTexts(prefix string, want, got map[string]string) []Diff {
	var out []Diff
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if got[name] != want[name] {
			out = append(out, Diff{What: prefix + name, Expected: want[name], Actual: orAbsent(got[name])})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[name]; !ok {
			out = append(out, Diff{What: prefix + name, Expected: "absent", Actual: got[name]})
		}
	}
	return out
}

func orAbsent(s string) string {
	if s == "" {
		return "absent"
	}
	return s
}

// policyText is what matters of a policy: its statements in order, with
// the sets they match and what they do.
func policyText(p *api.Policy) string {
	var b strings.Builder
	for i, st := range p.Statements {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(st.Name)
		if c := st.Conditions; c != nil {
			if c.PrefixSet != nil {
				fmt.Fprintf(&b, " prefix=%s", c.PrefixSet.Name)
			}
			if c.NeighborSet != nil {
				fmt.Fprintf(&b, " neighbor=%s", c.NeighborSet.Name)
			}
			if c.RouteType != api.Conditions_ROUTE_TYPE_UNSPECIFIED {
				fmt.Fprintf(&b, " type=%v", c.RouteType)
			}
		}
		if a := st.Actions; a != nil {
			fmt.Fprintf(&b, " -> %v", strings.TrimPrefix(a.RouteAction.String(), "ROUTE_ACTION_"))
			if a.LocalPref != nil {
				fmt.Fprintf(&b, " local-pref %d", a.LocalPref.Value)
			}
		}
	}
	return b.String()
}

func setText(d *api.DefinedSet) string {
	var items []string
	for _, p := range d.Prefixes {
		items = append(items, fmt.Sprintf("%s %d..%d", p.IpPrefix, p.MaskLengthMin, p.MaskLengthMax))
	}
	items = append(items, d.List...)
	slices.Sort(items)
	return strings.Join(items, ", ")
}

func assignmentText(a *api.PolicyAssignment) string {
	var names []string
	for _, p := range a.Policies {
		names = append(names, p.Name)
	}
	return strings.Join(names, ",") + " default " + strings.TrimPrefix(a.DefaultAction.String(), "ROUTE_ACTION_")
}

// Heal puts the speaker back as Apply left it: missing neighbors added,
// unknown ones removed, changed ones re-created, and the policies,
// defined sets and assignments set again (then a soft reset in re-runs
// the import policy over what every neighbor sent).
func (s *Server) Heal(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil || s.closed {
		return ErrNotRunning
	}
	peers, err := s.runningPeers(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for a, got := range peers {
		n, ours := s.peers[a]
		if ours && got == describeNeighbor(n.ASN, uint32(n.Port)) {
			continue
		}
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: heal: remove neighbor %s: %w", a, err))
		}
		delete(peers, a)
	}
	for a, n := range s.peers {
		if _, ok := peers[a]; ok {
			continue
		}
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(n)}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: heal: add neighbor %s (%v): %w", n.Name, a, err))
		}
	}
	if cfg := s.cfg.Load(); cfg != nil {
		pd, err := s.policyDrift(ctx, cfg)
		if err != nil {
			errs = append(errs, err)
		} else if len(pd) > 0 {
			// An assignment may be what drifted: set them again too.
			s.assigned = false
			if err := s.setPolicies(ctx, cfg); err != nil {
				// GoBGP holds neither the old policies nor the new ones
				// for sure: forget what Apply set, so that the next Apply
				// sets them again even with an unchanged config.
				s.policyKey = ""
				errs = append(errs, fmt.Errorf("bgp: heal: %w", err))
			}
			for a := range s.peers {
				_ = s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: a.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_IN})
			}
		}
	}
	return errors.Join(errs...)
}
