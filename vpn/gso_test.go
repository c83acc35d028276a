package vpn_test

import (
	"strings"
	"testing"
	"time"
)

// Bulk TCP through the tunnel over a 1380-byte underlay: wireguard-go
// batches the TUN's TSO segments into UDP GSO sends. With the derived MTU
// every segment fits the path; with a tunnel MTU set too large for the
// underlay the kernel refuses the batched sends, and they must fall back to
// single datagrams (fragmented by the kernel) instead of being lost.
func TestGSOSmallPathMTU(t *testing.T) {
	tp := newTopo(t, 1380)
	da, db := tp.up(t)
	tp.cloudRoutes()

	const size = 64 << 20
	bulk := func(t *testing.T) {
		t.Helper()
		sink := tp.b.StartHelper("sink", "10.2.0.1:5001")
		for !strings.Contains(sink.Output(), "listening") {
			select {
			case <-sink.Done():
				t.Fatalf("sink: %v\n%s", sink.Err(), sink.Output())
			case <-time.After(10 * time.Millisecond):
			}
		}
		start := time.Now()
		snd := tp.a.StartHelper("send", "10.2.0.1:5001", "67108864")
		select {
		case <-snd.Done():
		case <-time.After(40 * time.Second):
			t.Fatalf("transfer stalled; sender: %s", snd.Output())
		}
		if err := snd.Err(); err != nil {
			t.Fatalf("send: %v\n%s", err, snd.Output())
		}
		if err := sink.Err(); err != nil || !strings.Contains(sink.Output(), "received 67108864") {
			t.Fatalf("sink: %v\n%s", err, sink.Output())
		}
		t.Logf("64 MiB in %s", time.Since(start).Round(time.Millisecond))
	}

	t.Run("derived MTU", func(t *testing.T) {
		if m := da.status().Interfaces[0].MTU; m != 1300 {
			t.Fatalf("mtu %d, want 1300", m)
		}
		bulk(t)
		if f := da.status().Interfaces[0].GSOFallbacks; f != 0 {
			t.Errorf("%d GSO fallbacks with an MTU that fits the path", f)
		}
	})
	t.Run("MTU above the path", func(t *testing.T) {
		tp.site.Links[0].MTU = 1420
		da.mustApply(tp.site)
		db.mustApply(tp.site)
		if m := da.status().Interfaces[0].MTU; m != 1420 {
			t.Fatalf("mtu %d, want 1420", m)
		}
		bulk(t)
		t.Logf("GSO fallbacks: a %d, b %d", da.status().Interfaces[0].GSOFallbacks, db.status().Interfaces[0].GSOFallbacks)
	})
}
