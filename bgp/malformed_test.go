package bgp_test

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/bgp/bgptest"
	"github.com/intercloud/intercloud/test/netns"
)

// TestMalformedUpdates: a hostile peer sends malformed UPDATEs as raw bytes
// over TCP. The gateway keeps running, keeps its other session up, and
// keeps the routes it learned there.
func TestMalformedUpdates(t *testing.T) {
	h := netns.New(t)
	gwns, peers := h.Namespace("gw"), h.Namespace("peers")
	h.Veth(gwns, "eth0", peers, "eth0")
	gwns.Addr("eth0", "10.255.2.1/24")
	// The hostile peers (raw TCP from this test): one address per message,
	// so no message waits for the gateway's idle hold after the last reset.
	for i := range len(bgptest.Hostile) + 1 {
		peers.Addr("eth0", fmt.Sprintf("10.255.2.%d/24", 10+i))
	}
	peers.Addr("eth0", "10.255.2.3/24") // a well-behaved gateway of ours

	short := func(n bgp.Neighbor) bgp.Neighbor {
		n.HoldTime, n.Keepalive, n.ConnectRetry = 3*time.Second, time.Second, time.Second
		return n
	}
	gcfg := bgp.Config{
		ASN: 65001, RouterID: netip.MustParseAddr("10.255.2.1"),
		Announce: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")},
		Neighbors: []bgp.Neighbor{
			short(bgp.Neighbor{Name: "good", Kind: bgp.KindDedicated, ASN: 65002, Address: netip.MustParseAddr("10.255.2.3"),
				Allowed: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}}),
		},
	}
	for i := range len(bgptest.Hostile) + 1 {
		gcfg.Neighbors = append(gcfg.Neighbors, short(bgp.Neighbor{
			Name: fmt.Sprintf("hostile%d", i), Kind: bgp.KindExternal, ASN: 65090,
			Address: hostileAddr(i), Allowed: []netip.Prefix{netip.MustParsePrefix("10.30.0.0/16")}, Passive: true,
		}))
	}
	g := startGateway(t, gwns, gatewayConfig{BGP: gcfg})
	startGateway(t, peers, gatewayConfig{BGP: bgp.Config{
		ASN: 65002, RouterID: netip.MustParseAddr("10.255.2.3"),
		ListenAddresses: []netip.Addr{netip.MustParseAddr("10.255.2.3")},
		Announce:        []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")},
		Neighbors: []bgp.Neighbor{short(bgp.Neighbor{Name: "gw", Kind: bgp.KindDedicated, ASN: 65001,
			Address: netip.MustParseAddr("10.255.2.1"), LocalAddress: netip.MustParseAddr("10.255.2.3"),
			Allowed: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}})},
	}})
	g.WaitEstablished("good")
	eventually(t, 10*time.Second, "route from the good peer", func() error { return contains(g.Kernel(), "10.2.0.0/16 via 10.255.2.3") })
	before := g.Neighbors()["good"]

	// First check that the raw peer speaks well enough to be accepted:
	// a valid UPDATE is learned.
	valid := bgptest.Update(nil, bgptest.GoodAttrs, []byte{16, 10, 30})
	err := hostileSession(t, peers, hostileAddr(0), valid, func() {
		eventually(t, 10*time.Second, "route from the raw peer", func() error { return contains(g.Kernel(), "10.30.0.0/16 via 10.255.2.2") })
	})
	if err != nil {
		t.Fatalf("valid session: %v", err)
	}

	for i, tc := range bgptest.Hostile {
		t.Run(tc.Name, func(t *testing.T) {
			// Every message must really be delivered inside an
			// established session.
			if err := hostileSession(t, peers, hostileAddr(i+1), tc.Msg, nil); err != nil {
				t.Fatal(err)
			}
			select {
			case <-g.Proc.Done():
				t.Fatalf("gateway died: %v", g.Proc.Err())
			default:
			}
		})
	}
	after := g.Neighbors()
	if !after["good"].Established() || !after["good"].Since.Equal(before.Since) {
		t.Fatalf("the good session was disturbed: before %v, after %+v", before.Since, after["good"])
	}
	if err := contains(g.Kernel(), "10.2.0.0/16 via 10.255.2.3"); err != nil {
		t.Fatal(err)
	}
}

func hostileAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 255, 2, byte(10 + i)}) }

// hostileSession opens a BGP session from src as AS 65090, sends msg
// once established, and reads until the gateway closes the connection or
// a second passes. With check, the session is kept up (keepalives) while
// check runs.
func hostileSession(t *testing.T, ns *netns.Namespace, src netip.Addr, msg []byte, check func()) error {
	var c net.Conn
	err := ns.Do(func() error {
		d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
		var err error
		c, err = d.Dial("tcp", "10.255.2.1:179")
		return err
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := bgptest.Establish(c, 65090, src); err != nil {
		return err
	}
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if check != nil {
		c.SetDeadline(time.Time{})
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(500 * time.Millisecond):
					c.Write(bgptest.Keepalive)
				}
			}
		}()
		go io.Copy(io.Discard, c)
		check()
		close(stop)
		return nil
	}
	// Whatever the gateway answers (a NOTIFICATION, a close, or nothing
	// when it treats the update as a withdraw) is fine; only its survival
	// matters.
	c.SetDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, c)
	return nil
}
