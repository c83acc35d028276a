package multicloud

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/intercloud/intercloud/controller"
	"github.com/intercloud/intercloud/status"
)

// stepDrift breaks seoul-gw's route to tokyo and its tunnel's peer with
// ip(8) and wg(8), asks the node for a drift check and expects both
// healed, in the kernel, in the tunnel and in the event log. The gateway's
// own route re-sync or the node's periodic check may get there first: then
// the change is made again, so that the on-demand check is what sees it.
func stepDrift(ctx context.Context, t *Topology, logf func(string, ...any)) error {
	const ns, node, admin = "seoul-gw", "seoul-gw", "http://10.1.0.1:9180"
	dev := TunnelIf("tokyo-gw")
	peer, err := t.Run(ctx, ns, "wg", "show", dev, "peers")
	if err != nil {
		return fmt.Errorf("wg show %s peers: %v: %s", dev, err, peer)
	}
	peer = strings.TrimSpace(peer)
	breaks := []struct {
		kind, id string
		cmd      []string
	}{
		{status.DriftRoute, "10.2.0.0/16", []string{"ip", "route", "del", "10.2.0.0/16", "proto", Protocol}},
		{status.DriftWireguard, dev + " peer " + peer, []string{"wg", "set", dev, "peer", peer, "remove"}},
	}
	for _, b := range breaks {
		start := time.Now()
		seen := false
		for try := 0; try < 3 && !seen; try++ {
			if out, err := t.Run(ctx, ns, b.cmd[0], b.cmd[1:]...); err != nil {
				return fmt.Errorf("%s: %v: %s", strings.Join(b.cmd, " "), err, out)
			}
			out, err := t.Run(ctx, ns, t.opts.Binary, "drift", "--check", "-j", "--node", admin)
			d, jerr := decodeDrift(out)
			if jerr != nil || len(d.Nodes) != 1 {
				return fmt.Errorf("drift --check: %v %v\n%s", err, jerr, out)
			}
			for _, r := range d.Nodes[0].Resources {
				if r.Kind != b.kind || r.ID != b.id {
					continue
				}
				if r.State != status.DriftHealed {
					return fmt.Errorf("%s %s: %s %s (expected %s, actual %s)", r.Kind, r.ID, r.State, r.Message, r.Expected, r.Actual)
				}
				seen = true
			}
		}
		if !seen {
			return fmt.Errorf("%s %s: changed three times, never seen by a check", b.kind, b.id)
		}
		logf("%s: drift found and healed %.2fs after `%s`", b.id, time.Since(start).Seconds(), strings.Join(b.cmd, " "))
	}
	if out, err := t.Run(ctx, ns, "ip", "route", "show", "10.2.0.0/16", "proto", Protocol); err != nil || !strings.Contains(out, "10.2.0.0/16") {
		return fmt.Errorf("the route is not back: %v: %q", err, out)
	}
	if err := within(ctx, 30*time.Second, func() error { return t.vpnEstablished(ctx) }); err != nil {
		return fmt.Errorf("the tunnel after its heal: %w", err)
	}
	return within(ctx, 20*time.Second, func() error {
		out, err := t.CLI(ctx, "drift", node, "-j")
		d, jerr := decodeDrift(out)
		if jerr != nil {
			return fmt.Errorf("drift %s: %v %v\n%s", node, err, jerr, out)
		}
		found := map[string]bool{}
		for _, e := range d.Events {
			if e.State == status.DriftHealed {
				found[e.Kind+" "+e.ID] = true
			}
		}
		for _, b := range breaks {
			if !found[b.kind+" "+b.id] {
				return fmt.Errorf("no heal of %s %s in the event log: %+v", b.kind, b.id, d.Events)
			}
		}
		return nil
	})
}

// decodeDrift reads the JSON `intercloud drift -j` prints; what follows it
// (the exit message when something is still drifted) is not JSON.
func decodeDrift(out string) (*controller.Drift, error) {
	var d controller.Drift
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&d); err != nil {
		return nil, err
	}
	return &d, nil
}
