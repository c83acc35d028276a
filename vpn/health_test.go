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

// A handshake's age runs on the poller's clock: wireguard-go's wall-clock
// handshake times, off by a step of the wall clock, neither age a live
// session nor keep a stale one young.
func TestTrackerHandshakeAgeSurvivesWallSteps(t *testing.T) {
	k := Key{1}
	t0 := time.Unix(1_000_000, 0) // the poller's clock
	poll := func(tr *tracker, at time.Duration, hs time.Time) {
		tr.observe(t0.Add(at), uapiPeer{PublicKey: k, RxBytes: uint64(at), LastHandshake: hs}, 0)
	}
	t.Run("wall stepped back", func(t *testing.T) {
		var tr tracker
		poll(&tr, 0, t0.Add(-10*time.Second))
		// A handshake between the polls at 99 s and 100 s, which
		// wireguard-go stamps 30 s early: the wall clock went back.
		poll(&tr, 99*time.Second, t0.Add(-10*time.Second))
		poll(&tr, 100*time.Second, t0.Add(70*time.Second))
		if poll(&tr, 279*time.Second, t0.Add(70*time.Second)); !tr.up {
			t.Fatalf("179 s after the handshake on the poller's clock: down (%s)", tr.reason)
		}
		if poll(&tr, 281*time.Second, t0.Add(70*time.Second)); tr.up {
			t.Fatal("181 s after the handshake on the poller's clock: still up")
		}
	})
	t.Run("wall stepped forward", func(t *testing.T) {
		var tr tracker
		poll(&tr, 0, t0.Add(-10*time.Second))
		// Stamped 30 s ahead of the poll that sees it.
		poll(&tr, 50*time.Second, t0.Add(80*time.Second))
		if poll(&tr, 229*time.Second, t0.Add(80*time.Second)); !tr.up {
			t.Fatalf("179 s after the poll that saw the handshake: down (%s)", tr.reason)
		}
		if poll(&tr, 231*time.Second, t0.Add(80*time.Second)); tr.up {
			t.Fatal("181 s after the poll that saw the handshake: still up")
		}
	})
	t.Run("first sight takes the wall-clock age", func(t *testing.T) {
		var tr tracker
		if poll(&tr, 0, t0.Add(-181*time.Second)); tr.up {
			t.Fatal("a handshake 181 s old at first sight: up")
		}
		var fresh tracker
		if poll(&fresh, 0, t0.Add(-170*time.Second)); !fresh.up {
			t.Fatalf("a handshake 170 s old at first sight: down (%s)", fresh.reason)
		}
		if poll(&fresh, 11*time.Second, t0.Add(-170*time.Second)); fresh.up {
			t.Fatal("the same handshake 11 s later: still up")
		}
	})
}

// The pushes after a key change end at the first handshake since the
// change, even when the wall clock went back and stamps that handshake
// before the change.
func TestPushHandshakeEndsAfterWallStepBack(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	tn := &tunnel{rekeyAt: t0, nextPush: t0.Add(time.Hour), fastPoll: true}
	p := uapiPeer{PublicKey: Key{1}, LastHandshake: t0.Add(-time.Minute)} // the old session's
	tn.pushHandshake(t0.Add(300*time.Millisecond), p)
	if tn.rekeyAt.IsZero() {
		t.Fatal("ended on the handshake from before the key change")
	}
	tn.pushHandshake(t0.Add(600*time.Millisecond), p)
	if tn.rekeyAt.IsZero() {
		t.Fatal("ended without a new handshake")
	}
	p.LastHandshake = t0.Add(-29 * time.Second) // new, stamped after a 30 s step back
	tn.pushHandshake(t0.Add(time.Second), p)
	if !tn.rekeyAt.IsZero() || tn.fastPoll {
		t.Fatal("still pushing after a handshake since the key change")
	}
}
