package bgptest

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// A hostile BGP peer as raw bytes: the messages and the session the
// malformed-UPDATE tests (package bgp) and the soak (test/soak) send.

// Msg frames a BGP message of type typ.
func Msg(typ byte, body []byte) []byte {
	m := make([]byte, 19, 19+len(body))
	for i := 0; i < 16; i++ {
		m[i] = 0xff
	}
	binary.BigEndian.PutUint16(m[16:], uint16(19+len(body)))
	m[18] = typ
	return append(m, body...)
}

// Open is an OPEN from a 2-byte asn with no capabilities.
func Open(asn uint16, hold uint16, id netip.Addr) []byte {
	b := []byte{4, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[1:], asn)
	binary.BigEndian.PutUint16(b[3:], hold)
	b = append(b, id.AsSlice()...)
	return Msg(1, append(b, 0))
}

// Keepalive is a KEEPALIVE.
var Keepalive = Msg(4, nil)

// Update builds an UPDATE from raw withdrawn routes, attributes and NLRI.
func Update(withdrawn, attrs, nlri []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(withdrawn)))
	b = append(b, withdrawn...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(attrs)))
	b = append(b, attrs...)
	return Msg(2, append(b, nlri...))
}

// Well-formed attributes of a route from AS 65090 with next hop
// 10.255.2.2: ORIGIN, AS_PATH, NEXT_HOP.
var (
	Origin    = []byte{0x40, 1, 1, 0}
	ASPath    = []byte{0x40, 2, 4, 2, 1, 0xfe, 0x42} // AS_SEQUENCE {65090}, 2-byte ASN
	NextHop   = []byte{0x40, 3, 4, 10, 255, 2, 2}
	GoodAttrs = cat(Origin, ASPath, NextHop)
)

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// Hostile are malformed messages a peer may send once established: broken
// framing and lengths, and the shapes of the 2026 GoBGP advisories (each
// names its advisory or issue).
var Hostile = []struct {
	Name string
	Msg  []byte
}{
	{"withdrawn length past the end", func() []byte {
		m := Update(nil, GoodAttrs, []byte{16, 10, 30})
		binary.BigEndian.PutUint16(m[19:], 0xffff)
		return m
	}()},
	{"attribute length past the end", Update(nil, []byte{0x40, 1, 200, 0}, []byte{16, 10, 30})},
	{"total attribute length past the end", func() []byte {
		m := Update(nil, GoodAttrs, nil)
		binary.BigEndian.PutUint16(m[21:], 4000)
		return m
	}()},
	{"prefix length 40 for IPv4", Update(nil, GoodAttrs, []byte{40, 10, 30, 0, 0, 0})},
	{"truncated AS_PATH segment", Update(nil, cat(Origin, []byte{0x40, 2, 4, 2, 10, 0xfe, 0x42}), []byte{16, 10, 30})},
	{"MP_REACH with a bogus AFI", Update(nil, cat(GoodAttrs, []byte{0x80, 14, 5, 0x12, 0x34, 9, 4, 1}), nil)},
	{"duplicate ORIGIN", Update(nil, cat(GoodAttrs, Origin), []byte{16, 10, 30})},
	{"extended-length flag with a 1-byte length", Update(nil, []byte{0x50, 1, 1}, nil)},
	// osrg/gobgp#3392: a well-known ORIGIN without the transitive flag.
	{"ORIGIN without the transitive flag", Update(nil, cat([]byte{0x00, 1, 1, 0}, ASPath, NextHop), []byte{16, 10, 30})},
	// GHSA-p3w2-64xm-833j: inconsistent attribute lengths, treated as a
	// withdraw, reached AdjRib.Update with nothing to withdraw.
	{"inconsistent attribute lengths (treat-as-withdraw)", Update(nil, cat(Origin, []byte{0x40, 2, 6, 2, 1, 0xfe, 0x42}, NextHop), []byte{16, 10, 31})},
	// GHSA-frrj-87jh-2772: a zero-length AS_PATH.
	{"zero-length AS_PATH", Update(nil, cat(Origin, []byte{0x40, 2, 0}, NextHop), []byte{16, 10, 32})},
	// GHSA-7235-89m6-f4px: an unrecognized attribute marked well-known.
	{"unknown well-known attribute", Update(nil, cat(GoodAttrs, []byte{0x40, 99, 2, 1, 2}), []byte{16, 10, 33})},
	// GHSA-8rxh-r2p6-7f2q: AS_PATH with AS_TRANS and a shorter AS4_PATH.
	{"AS_PATH and a mismatched AS4_PATH", Update(nil, cat(Origin, []byte{0x40, 2, 6, 2, 2, 0x5b, 0xa0, 0x5b, 0xa0}, NextHop,
		[]byte{0xc0, 17, 6, 2, 1, 0, 0, 0xfe, 0x42}, []byte{0xc0, 17, 2, 2, 5}), []byte{16, 10, 34})},
	// osrg/gobgp#3305, GHSA-4p9m-8gc4-rw2h: NEXT_HOP shorter than 4 bytes.
	{"NEXT_HOP of 1 byte", Update(nil, cat(Origin, ASPath, []byte{0x40, 3, 1, 10}), []byte{16, 10, 35})},
	// GHSA-wmvj-f67g-qg4g: an IPv6-address-specific extended community
	// (attribute 25) cut short.
	{"short IPv6 extended community", Update(nil, cat(GoodAttrs, []byte{0xc0, 25, 3, 0x00, 0x02, 0x20}), []byte{16, 10, 36})},
	{"message length below the header", func() []byte {
		m := Msg(2, []byte{0, 0, 0, 0})
		binary.BigEndian.PutUint16(m[16:], 5)
		return m
	}()},
	{"unknown message type", Msg(9, []byte{1, 2, 3})},
	{"garbage marker", append([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 23, 2}, 0, 0, 0, 0)},
}

// ReadMsg reads messages from c until one of type want; a NOTIFICATION
// first is an error naming its code and subcode.
func ReadMsg(c net.Conn, want byte) error {
	for {
		hdr := make([]byte, 19)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint16(hdr[16:]))
		if n < 19 {
			return fmt.Errorf("message length %d", n)
		}
		body := make([]byte, n-19)
		if _, err := io.ReadFull(c, body); err != nil {
			return err
		}
		switch hdr[18] {
		case want:
			return nil
		case 3:
			if len(body) < 2 {
				return fmt.Errorf("short notification")
			}
			return fmt.Errorf("notification %d/%d", body[0], body[1])
		}
	}
}

// Establish sends an OPEN as asn with router id id on c, and waits for
// the peer's OPEN and KEEPALIVE: the session is established when it
// returns nil.
func Establish(c net.Conn, asn uint16, id netip.Addr) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(Open(asn, 30, id)); err != nil {
		return err
	}
	if err := ReadMsg(c, 1); err != nil {
		return fmt.Errorf("open: %w", err)
	}
	if _, err := c.Write(Keepalive); err != nil {
		return err
	}
	if err := ReadMsg(c, 4); err != nil {
		return fmt.Errorf("keepalive: %w", err)
	}
	return nil
}
