package dns

import (
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"
)

// FuzzRespond feeds raw packets to the query handler: it must never panic,
// and whatever it answers must be a well-formed DNS message with the
// request's ID that fits the UDP limit.
func FuzzRespond(f *testing.F) {
	for _, c := range malformed {
		f.Add(c.pkt, false)
	}
	for _, c := range cases {
		if b, err := c.msg().Pack(); err == nil {
			f.Add(b, false)
			f.Add(b, true)
		}
	}
	s, err := New(Options{Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	snap := testSnapshot(testGeoIP(f))
	st := compile(f, s, snap)
	src := netip.MustParseAddr("127.0.0.1")
	var q query
	f.Fuzz(func(t *testing.T, pkt []byte, tcp bool) {
		out, o := st.respond(&q, pkt, src, tcp, nil, 7)
		if out == nil {
			if !o.dropped {
				t.Fatal("nil answer without a drop")
			}
			return
		}
		r := new(mdns.Msg)
		if err := r.Unpack(out); err != nil {
			t.Fatalf("answer does not parse: %v\nquery %x\nanswer %x", err, pkt, out)
		}
		if len(pkt) >= 2 && r.Id != uint16(pkt[0])<<8|uint16(pkt[1]) {
			t.Fatalf("id %x", r.Id)
		}
		if !tcp && len(out) > ourUDPSize {
			t.Fatalf("UDP answer of %d bytes", len(out))
		}
		if !r.Response || r.RecursionAvailable {
			t.Fatalf("flags %v", r.MsgHdr)
		}
	})
}
