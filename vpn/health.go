package vpn

import (
	"fmt"
	"time"
)

// staleHandshake is WireGuard's Reject-After-Time: a session older than this
// can no longer carry data, and with any traffic at all (persistent
// keepalives included) a live peer renews its session well before it.
const staleHandshake = 180 * time.Second

// deadFactor is how many keepalive intervals may pass without a single
// packet from the peer before its path is called dead. A live peer sends at
// least one packet per interval (its persistent keepalive), so three
// silent intervals mean loss, not idleness.
const deadFactor = 3

// tracker follows one peer's receive counter between polls: the arrival of
// authenticated packets from the peer is the data-plane proof that the path
// works in the direction that matters for us.
type tracker struct {
	key  Key // the peer the counters belong to
	rx   uint64
	rxAt time.Time // when rx last grew
	// hs is the peer's last handshake as wireguard-go reports it: wall
	// clock. hsAt is when it happened on the poller's own (monotonic)
	// clock: a handshake's age is measured from hsAt, so a step of the
	// wall clock does not age a live session past staleHandshake (nor keep
	// a stale one young).
	hs, hsAt time.Time
	polled   time.Time // the previous poll, on the poller's clock
	up       bool
	reason   string
	since    time.Time
}

func (tr *tracker) reset() { *tr = tracker{} }

// observe feeds one poll and reports whether the state changed.
func (tr *tracker) observe(now time.Time, p uapiPeer, keepalive time.Duration) (changed bool) {
	if p.PublicKey != tr.key {
		*tr = tracker{key: p.PublicKey}
		tr.rxAt = now
	}
	if p.RxBytes != tr.rx {
		tr.rx, tr.rxAt = p.RxBytes, now
	}
	tr.handshake(now, p.LastHandshake)
	tr.polled = now
	up, reason := judge(now, tr.hsAt, tr.rxAt, keepalive)
	if up != tr.up || tr.since.IsZero() {
		tr.up, tr.reason, tr.since = up, reason, now
		return true
	}
	tr.reason = reason
	return false
}

// handshake notes a handshake wireguard-go reports (wall clock) on the
// poller's clock. Its wall-clock age is trusted only within what the
// poller saw itself: a handshake new since the previous poll happened
// between the two polls, whatever the wall clock says; only the first
// sight of one (a new tracker) takes its age from the wall clock alone.
func (tr *tracker) handshake(now, hs time.Time) {
	if hs.Equal(tr.hs) && !tr.polled.IsZero() {
		return
	}
	tr.hs = hs
	if hs.IsZero() {
		tr.hsAt = time.Time{}
		return
	}
	age := max(now.Sub(hs), 0)
	if !tr.polled.IsZero() {
		age = min(age, now.Sub(tr.polled))
	}
	tr.hsAt = now.Add(-age)
}

// judge is the verdict on one peer. lastHandshake is when its last
// handshake happened and lastRx when we last received anything from it,
// both on the poller's clock.
func judge(now, lastHandshake, lastRx time.Time, keepalive time.Duration) (bool, string) {
	if lastHandshake.IsZero() {
		return false, "no handshake yet"
	}
	if age := now.Sub(lastHandshake); age > staleHandshake {
		return false, fmt.Sprintf("handshake stale (%s ago)", age.Round(time.Second))
	}
	if keepalive > 0 {
		if quiet := now.Sub(lastRx); quiet > deadFactor*keepalive {
			return false, fmt.Sprintf("nothing received for %s (keepalive %s)", quiet.Round(100*time.Millisecond), keepalive)
		}
	}
	return true, ""
}
