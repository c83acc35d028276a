package edge

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/intercloud/intercloud/status"
)

// Connections' handshake RTTs reach the node's report by client network.
func TestClientRTTReported(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_INFO is read on Linux only")
	}
	clk := &clock{}
	o := newOrigin(t, clk, body("x", "Cache-Control", "max-age=60"))
	h := newHarness(t, clk, site(1, simple(o.URL)))
	want := netip.MustParsePrefix("127.0.0.0/24")
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.c.CloseIdleConnections() // a new connection, a new sample
		h.get("/")
		var rep status.RoleReport
		h.e.Report(&rep)
		if len(rep.ClientRTT) > 0 {
			m := rep.ClientRTT[0]
			if m.Network != want || m.RTT <= 0 || m.Samples < 1 {
				t.Fatalf("client RTT %+v, want a positive RTT for %s", m, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no client RTT reported")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
