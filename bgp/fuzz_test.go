package bgp_test

import (
	"testing"

	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/intercloud/intercloud/bgp/bgptest"
)

// FuzzParseMessage feeds arbitrary bytes to the BGP message parser that
// every byte from a peer goes through: it must return an error, never
// panic. Seeds are the hostile messages of TestMalformedUpdates and a valid
// UPDATE and OPEN.
//
//	go test -run '^$' -fuzz FuzzParseMessage ./bgp/
func FuzzParseMessage(f *testing.F) {
	f.Add(bgptest.Update(nil, bgptest.GoodAttrs, []byte{16, 10, 30}))
	f.Add(bgptest.Open(65090, 30, hostileAddr(0)))
	f.Add(bgptest.Keepalive)
	for _, m := range bgptest.Hostile {
		f.Add(m.Msg)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Both 2- and 4-byte AS encodings are negotiated in practice.
		for _, opt := range []*gobgp.MarshallingOption{nil, {}} {
			var msg *gobgp.BGPMessage
			var err error
			if opt == nil {
				msg, err = gobgp.ParseBGPMessage(data)
			} else {
				msg, err = gobgp.ParseBGPMessage(data, opt)
			}
			if err == nil && msg == nil {
				t.Fatal("nil message without an error")
			}
			if err == nil {
				// What parses must serialize again.
				if _, err := msg.Serialize(); err != nil {
					t.Logf("re-serialize: %v", err)
				}
			}
		}
	})
}
