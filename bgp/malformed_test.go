package bgp_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/test/netns"
)

func bgpMsg(typ byte, body []byte) []byte {
	m := make([]byte, 19, 19+len(body))
	for i := 0; i < 16; i++ {
		m[i] = 0xff
	}
	binary.BigEndian.PutUint16(m[16:], uint16(19+len(body)))
	m[18] = typ
	return append(m, body...)
}

func openMsg(asn uint16, hold uint16, id netip.Addr) []byte {
	b := []byte{4, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[1:], asn)
	binary.BigEndian.PutUint16(b[3:], hold)
	b = append(b, id.AsSlice()...)
	return bgpMsg(1, append(b, 0))
}

var keepalive = bgpMsg(4, nil)

// update builds an UPDATE from raw withdrawn routes, attributes and NLRI.
func update(withdrawn, attrs, nlri []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(withdrawn)))
	b = append(b, withdrawn...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(attrs)))
	b = append(b, attrs...)
	return bgpMsg(2, append(b, nlri...))
}

var (
	origin     = []byte{0x40, 1, 1, 0}
	asPath     = []byte{0x40, 2, 4, 2, 1, 0xfe, 0x42} // AS_SEQUENCE {65090}, 2-byte ASN
	nextHop    = []byte{0x40, 3, 4, 10, 255, 2, 2}
	goodAttrs  = append(append(append([]byte{}, origin...), asPath...), nextHop...)
	hostileMsg = []struct {
		name string
		msg  []byte
	}{
		{"withdrawn length past the end", func() []byte {
			m := update(nil, goodAttrs, []byte{16, 10, 30})
			binary.BigEndian.PutUint16(m[19:], 0xffff)
			return m
		}()},
		{"attribute length past the end", update(nil, []byte{0x40, 1, 200, 0}, []byte{16, 10, 30})},
		{"total attribute length past the end", func() []byte {
			m := update(nil, goodAttrs, nil)
			binary.BigEndian.PutUint16(m[21:], 4000)
			return m
		}()},
		{"prefix length 40 for IPv4", update(nil, goodAttrs, []byte{40, 10, 30, 0, 0, 0})},
		{"truncated AS_PATH segment", update(nil, append(append([]byte{}, origin...), 0x40, 2, 4, 2, 10, 0xfe, 0x42), []byte{16, 10, 30})},
		{"MP_REACH with a bogus AFI", update(nil, append(append([]byte{}, goodAttrs...), 0x80, 14, 5, 0x12, 0x34, 9, 4, 1), nil)},
		{"duplicate ORIGIN", update(nil, append(append([]byte{}, goodAttrs...), origin...), []byte{16, 10, 30})},
		{"extended-length flag with a 1-byte length", update(nil, []byte{0x50, 1, 1}, nil)},
		{"message length below the header", func() []byte {
			m := bgpMsg(2, []byte{0, 0, 0, 0})
			binary.BigEndian.PutUint16(m[16:], 5)
			return m
		}()},
		{"unknown message type", bgpMsg(9, []byte{1, 2, 3})},
		{"garbage marker", append([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 23, 2}, 0, 0, 0, 0)},
	}
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
	for i := range len(hostileMsg) + 1 {
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
	for i := range len(hostileMsg) + 1 {
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
	valid := update(nil, goodAttrs, []byte{16, 10, 30})
	err := hostileSession(t, peers, hostileAddr(0), valid, func() {
		eventually(t, 10*time.Second, "route from the raw peer", func() error { return contains(g.Kernel(), "10.30.0.0/16 via 10.255.2.2") })
	})
	if err != nil {
		t.Fatalf("valid session: %v", err)
	}

	for i, tc := range hostileMsg {
		t.Run(tc.name, func(t *testing.T) {
			// Every message must really be delivered inside an
			// established session.
			if err := hostileSession(t, peers, hostileAddr(i+1), tc.msg, nil); err != nil {
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
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(openMsg(65090, 30, src)); err != nil {
		return err
	}
	// Their OPEN, then our KEEPALIVE, their KEEPALIVE: established.
	if err := readMsg(c, 1); err != nil {
		return fmt.Errorf("open: %w", err)
	}
	if _, err := c.Write(keepalive); err != nil {
		return err
	}
	if err := readMsg(c, 4); err != nil {
		return fmt.Errorf("keepalive: %w", err)
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
					c.Write(keepalive)
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

func readMsg(c net.Conn, want byte) error {
	for {
		hdr := make([]byte, 19)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return err
		}
		body := make([]byte, int(binary.BigEndian.Uint16(hdr[16:]))-19)
		if _, err := io.ReadFull(c, body); err != nil {
			return err
		}
		switch hdr[18] {
		case want:
			return nil
		case 3:
			return fmt.Errorf("notification %d/%d", body[0], body[1])
		}
	}
}
