package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"

	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/test/netns"
	"github.com/intercloud/intercloud/vpn"
)

func init() { netns.RegisterHelper("close-rebind", closeRebind) }

// The ports of the close test; the helper runs in a namespace of its own,
// so fixed ports clash with nothing.
const (
	closeBGPPort = 17900
	closeWGPort  = 51820
)

// TestCloseReleasesPortsAndDevices: a gateway with a BGP listener and a
// WireGuard tunnel is closed, and a second gateway binds the same BGP
// port, UDP port and TUN device name at once. wireguard-go must not see a
// namespace switch, so the whole sequence runs as a helper process inside
// a namespace the test made.
func TestCloseReleasesPortsAndDevices(t *testing.T) {
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
	p := ns.StartHelper("close-rebind", file)
	if err := p.Err(); err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}
}

// closeRebind runs inside the namespace. args: the private key file.
func closeRebind(args []string) int {
	if err := closeRebindSteps(args[0]); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	return 0
}

func closeRebindSteps(keyFile string) error {
	ctx := context.Background()
	snap := snapshot(&helperTB{}, siteOpts{keyFile: keyFile, bgpPort: closeBGPPort, wgPort: closeWGPort})
	dev := vpn.IfName("peer")
	start := func(which string) (*Gateway, error) {
		g, err := New(role.Options{Node: "gw", Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), Registry: prometheus.NewRegistry()})
		if err != nil {
			return nil, fmt.Errorf("%s gateway: new: %w", which, err)
		}
		c, err := g.Prepare(ctx, snap)
		if err != nil {
			g.Close(ctx)
			return nil, fmt.Errorf("%s gateway: prepare: %w", which, err)
		}
		c.Commit()
		if err := g.Ready(); err != nil {
			g.Close(ctx)
			return nil, fmt.Errorf("%s gateway: %w", which, err)
		}
		if err := held(dev); err != nil {
			g.Close(ctx)
			return nil, fmt.Errorf("%s gateway running: %w", which, err)
		}
		return g, nil
	}
	first, err := start("first")
	if err != nil {
		return err
	}
	if err := first.Close(ctx); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	if err := released(dev); err != nil {
		return fmt.Errorf("after close: %w", err)
	}
	second, err := start("second")
	if err != nil {
		return err
	}
	return second.Close(ctx)
}

// held is nil when the BGP port, the WireGuard port and the device are
// taken.
func held(dev string) error {
	if ln, err := net.Listen("tcp", fmt.Sprintf(":%d", closeBGPPort)); err == nil {
		ln.Close()
		return fmt.Errorf("bgp port %d is free", closeBGPPort)
	}
	if c, err := net.ListenPacket("udp", fmt.Sprintf(":%d", closeWGPort)); err == nil {
		c.Close()
		return fmt.Errorf("wireguard port %d is free", closeWGPort)
	}
	if _, err := netlink.LinkByName(dev); err != nil {
		return fmt.Errorf("device %s: %w", dev, err)
	}
	return nil
}

// released is nil when the BGP port, the WireGuard port and the device are
// free again.
func released(dev string) error {
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", closeBGPPort))
	if err != nil {
		return fmt.Errorf("bgp port: %w", err)
	}
	ln.Close()
	c, err := net.ListenPacket("udp", fmt.Sprintf(":%d", closeWGPort))
	if err != nil {
		return fmt.Errorf("wireguard port: %w", err)
	}
	c.Close()
	if _, err := netlink.LinkByName(dev); !errors.As(err, new(netlink.LinkNotFoundError)) {
		return fmt.Errorf("device %s still there: %v", dev, err)
	}
	return nil
}

// helperTB lets snapshot run in the helper process, which has no
// testing.T; snapshot only fails on a key it cannot generate.
type helperTB struct{ testing.TB }

func (helperTB) Helper() {}
func (helperTB) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, args...)
	os.Exit(1)
}
