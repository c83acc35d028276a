package dns

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// Response rate limiting (RRL), after BIND's and Knot's: a spoofed-source
// flood turns an authoritative server into an amplifier, so over UDP each
// (client /24 or /56, answer) gets at most rate responses per second. Past
// that, every other response "slips" out as a bare truncated answer (a
// real client retries over TCP, which cannot be spoofed) and the rest are
// dropped. A fixed table of atomic slots keeps it allocation- and lock-free;
// two keys sharing a slot just reset each other's count, which errs on the
// side of answering.

const rrlSlots = 1 << 16

type rrlAction uint8

const (
	rrlPass rrlAction = iota
	rrlSlip
	rrlDrop
)

type rrl struct {
	rate  uint64
	slots [rrlSlots]atomic.Uint64 // tag(32) | second(16) | count(16)
}

func newRRL(rate int) *rrl {
	if rate <= 0 {
		return nil
	}
	return &rrl{rate: uint64(min(rate, 0xFFFE))}
}

// rrlKey identifies the answer a response carries: the client's network,
// and the name (the zone for NXDOMAIN, so random names share one budget),
// type and rcode.
func rrlKey(q *query, o *outcome, src netip.Addr, zone []byte) uint64 {
	h := uint64(14695981039346656037)
	mix := func(b byte) { h = (h ^ uint64(b)) * 1099511628211 }
	src = src.Unmap()
	if src.Is4() {
		a := src.As4()
		for _, b := range a[:3] {
			mix(b)
		}
	} else {
		a := src.As16()
		for _, b := range a[:7] {
			mix(b)
		}
	}
	name := q.lowerName()
	if o.rcode == rcodeNXDomain || o.rcode == rcodeRefused || len(name) == 0 {
		name = zone
	}
	for _, b := range name {
		mix(b)
	}
	mix(byte(q.qtype >> 8))
	mix(byte(q.qtype))
	mix(byte(o.rcode))
	return h
}

// account counts one response of key in second now and says what to do.
func (r *rrl) account(key uint64, now int64) rrlAction {
	slot := &r.slots[key&(rrlSlots-1)]
	tag := key >> 32
	sec := uint64(now) & 0xFFFF
	for {
		old := slot.Load()
		count := uint64(1)
		if old>>32 == tag && (old>>16)&0xFFFF == sec {
			count = min(old&0xFFFF+1, 0xFFFF)
		}
		if slot.CompareAndSwap(old, tag<<32|sec<<16|count) {
			switch {
			case count <= r.rate:
				return rrlPass
			case count%2 == 0:
				return rrlSlip
			}
			return rrlDrop
		}
	}
}

// slip rewrites resp, in place, into a bare truncated answer: the header
// and the question, TC set, no records.
func slip(resp []byte, q *query) []byte {
	n := headerLen + len(q.question)
	if n > len(resp) {
		return resp
	}
	resp = resp[:n]
	resp[2] |= flagTC >> 8
	for i := 6; i < 12; i++ {
		resp[i] = 0
	}
	return resp
}

// limit applies the state's rate limit to a UDP response: it returns the
// response to send (maybe slipped) or nil to drop it.
func limit(st *state, q *query, o *outcome, src netip.Addr, resp []byte, now time.Time, m *metrics) []byte {
	switch st.rrl.account(rrlKey(q, o, src, st.zone), now.Unix()) {
	case rrlSlip:
		m.rrlSlip.Inc()
		return slip(resp, q)
	case rrlDrop:
		m.rrlDrop.Inc()
		return nil
	}
	return resp
}
