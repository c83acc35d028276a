package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/test/netns"
	"github.com/intercloud/intercloud/test/testenv"
	"github.com/intercloud/intercloud/vpn"
)

func init() { netns.RegisterHelper("drift-gw", driftGateway) }

// TestDrift runs a gateway with a BGP neighbor over a WireGuard tunnel in
// a namespace of its own, breaks the tunnel with wg(8) and ip(8) there,
// and checks the role's Drift names it (and nothing of BGP, which nobody
// touched) and its Heal puts it back. Routes and the speaker have their
// own tests in route and bgp; this one is the role's wiring.
func TestDrift(t *testing.T) {
	testenv.NeedTool(t, "wg", "wireguard-tools")
	testenv.NeedFile(t, "/dev/net/tun", "load the tun module: modprobe tun")
	h := netns.New(t)
	ns := h.Namespace("gw")
	key, err := vpn.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "gw.key")
	if err := vpn.WriteKeyFile(file, key, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove("/var/run/wireguard/" + vpn.IfName("peer") + ".sock") })
	p := ns.StartHelper("drift-gw", file)
	<-p.Done()
	if err := p.Err(); err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}
}

func driftGateway(args []string) int {
	if err := driftSteps(args[0]); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	return 0
}

func driftSteps(keyFile string) error {
	ctx := context.Background()
	snap := snapshot(&helperTB{}, siteOpts{keyFile: keyFile, bgpPort: -1})
	g, err := New(role.Options{Node: "gw", Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), Registry: prometheus.NewRegistry()})
	if err != nil {
		return err
	}
	defer g.Close(ctx)
	if err := role.Apply(ctx, g, snap); err != nil {
		return err
	}
	dev, peer := vpn.IfName("peer"), snap.Site.Links[0].B.PublicKey
	drift := func() ([]status.DriftResource, error) { return g.Drift(ctx) }
	if d, err := drift(); err != nil || len(d) != 0 {
		return fmt.Errorf("fresh gateway: %+v, %v", d, err)
	}
	for _, c := range []struct {
		cmd []string
		id  string
	}{
		{[]string{"wg", "set", dev, "peer", peer, "remove"}, dev + " peer " + peer},
		{[]string{"ip", "link", "set", "dev", dev, "mtu", "1300"}, dev + " mtu"},
	} {
		if out, err := exec.Command(c.cmd[0], c.cmd[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(c.cmd, " "), err, out)
		}
		d, err := drift()
		if err != nil {
			return err
		}
		if len(d) != 1 || d[0].Kind != status.DriftWireguard || d[0].ID != c.id {
			return fmt.Errorf("after %s: %+v, want only %q", strings.Join(c.cmd, " "), d, c.id)
		}
		if err := g.Heal(ctx, d[0]); err != nil {
			return err
		}
		if d, err := drift(); err != nil || len(d) != 0 {
			return fmt.Errorf("after the heal of %s: %+v, %v", c.id, d, err)
		}
	}
	return nil
}
