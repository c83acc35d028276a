package vpn

import (
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	ka := 5 * time.Second
	tests := []struct {
		name          string
		handshake, rx time.Time
		keepalive     time.Duration
		up            bool
	}{
		{"never handshaked", time.Time{}, now, ka, false},
		{"fresh", now.Add(-10 * time.Second), now.Add(-time.Second), ka, true},
		{"quiet within three keepalives", now.Add(-10 * time.Second), now.Add(-14 * time.Second), ka, true},
		{"quiet past three keepalives", now.Add(-10 * time.Second), now.Add(-16 * time.Second), ka, false},
		{"handshake stale", now.Add(-181 * time.Second), now, ka, false},
		{"no keepalive: only the handshake counts", now.Add(-170 * time.Second), now.Add(-170 * time.Second), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, reason := judge(now, tt.handshake, tt.rx, tt.keepalive)
			if up != tt.up {
				t.Fatalf("up = %v (%s), want %v", up, reason, tt.up)
			}
			if !up && reason == "" {
				t.Fatal("down without a reason")
			}
		})
	}
}

func TestTrackerTransitions(t *testing.T) {
	var tr tracker
	k := Key{1}
	t0 := time.Unix(1_000_000, 0)
	ka := time.Second
	steps := []struct {
		at      time.Duration
		rx      uint64
		hs      time.Duration // handshake time offset from t0; -1: never
		up      bool
		changed bool
	}{
		{0, 0, -1, false, true}, // first sight: reported down
		{500 * time.Millisecond, 0, -1, false, false},
		{time.Second, 148, time.Second, true, true}, // handshake completes
		{2 * time.Second, 180, time.Second, true, false},
		{4 * time.Second, 180, time.Second, true, false}, // 2s quiet < 3 keepalives
		{5500 * time.Millisecond, 180, time.Second, false, true},
		{6 * time.Second, 212, time.Second, true, true}, // path back
	}
	for i, s := range steps {
		p := uapiPeer{PublicKey: k, RxBytes: s.rx}
		if s.hs >= 0 {
			p.LastHandshake = t0.Add(s.hs)
		}
		changed := tr.observe(t0.Add(s.at), p, ka)
		if changed != s.changed || tr.up != s.up {
			t.Fatalf("step %d: changed=%v up=%v (%s), want changed=%v up=%v", i, changed, tr.up, tr.reason, s.changed, s.up)
		}
	}
	// A new peer key starts over.
	if !tr.observe(t0.Add(7*time.Second), uapiPeer{PublicKey: Key{2}}, ka) || tr.up {
		t.Fatal("new peer key did not reset the tracker")
	}
}
