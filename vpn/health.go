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
	key    Key // the peer the counters belong to
	rx     uint64
	rxAt   time.Time // when rx last grew
	up     bool
	reason string
	since  time.Time
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
	up, reason := judge(now, p.LastHandshake, tr.rxAt, keepalive)
	if up != tr.up || tr.since.IsZero() {
		tr.up, tr.reason, tr.since = up, reason, now
		return true
	}
	tr.reason = reason
	return false
}

// judge is the verdict on one peer. lastRx is when we last received
// anything from it.
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
