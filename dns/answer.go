package dns

import (
	"encoding/binary"
	"net/netip"
)

// outcome is what a query came to, for metrics and explanations.
type outcome struct {
	dropped bool
	qtype   uint16
	rcode   int
	pool    *pool // the pool answered from, if any
	place   int32 // where the client was placed (-1 unknown)
	ecsUsed bool
	scope   uint8
	// byLatency: the pool is the cloud measured closest (latency.go).
	byLatency bool
}

// respond answers one request into b (which it may grow) and returns the
// response, or nil when the request is dropped. turn picks the rotation.
func (st *state) respond(q *query, req []byte, src netip.Addr, tcp bool, b []byte, turn uint32) ([]byte, outcome) {
	*q = query{}
	o := outcome{place: -1}
	if err := q.parseHeader(req); err != nil {
		o.dropped = true
		return nil, o
	}
	if q.opcode != 0 {
		o.rcode = rcodeNotImp
		return headerOnly(b, q, rcodeNotImp), o
	}
	rc := q.parse(req)
	o.qtype = q.qtype
	if rc == rcodeFormErr {
		o.rcode = rc
		return headerOnly(b, q, rcodeFormErr), o
	}
	b = append(b[:0], req[:headerLen]...)
	b = append(b, q.question...)
	qend := len(b)
	var an, ns, ar uint16
	aa := false
	switch {
	case rc == rcodeBadVers:
	case q.qclass != classIN:
		rc = rcodeRefused
	case !inZone(q.lowerName(), st.zone):
		rc = rcodeRefused
	default:
		aa = true
		b, an, ns, ar, rc = st.answer(q, src, b, turn, &o)
	}
	o.rcode = rc

	optLen := 0
	if q.edns {
		optLen = 11
		if q.ecs {
			optLen += 8 + (int(q.ecsSource)+7)/8
		}
	}
	limit := 0xFFFF
	if !tcp {
		limit = 512
		if q.edns {
			limit = int(min(q.udpSize, ourUDPSize))
		}
	}
	tc := false
	if len(b)+optLen > limit {
		// RFC 2181 §9: when the answer does not fit, send what is sure to
		// fit (the question) with TC so the client retries over TCP.
		b = b[:qend]
		an, ns, ar, tc = 0, 0, 0, true
	}
	if q.edns {
		b = st.appendOPT(b, q, rc, &o)
		ar++
	}
	flags := uint16(flagQR) | q.flags&(flagRD|flagCD) | uint16(rc&0xF)
	if aa {
		flags |= flagAA
	}
	if tc {
		flags |= flagTC
	}
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], 1)
	binary.BigEndian.PutUint16(b[6:], an)
	binary.BigEndian.PutUint16(b[8:], ns)
	binary.BigEndian.PutUint16(b[10:], ar)
	return b, o
}

// headerOnly answers a request that could not be read past its header.
func headerOnly(b []byte, q *query, rc int) []byte {
	b = append(b[:0], make([]byte, headerLen)...)
	binary.BigEndian.PutUint16(b, q.id)
	binary.BigEndian.PutUint16(b[2:], uint16(flagQR)|q.flags&(0xF<<11|flagRD|flagCD)|uint16(rc))
	return b
}

func (st *state) appendOPT(b []byte, q *query, rc int, o *outcome) []byte {
	var do byte
	if q.do {
		do = 0x80 // RFC 3225: the DO bit is copied
	}
	rdlen := 0
	alen := (int(q.ecsSource) + 7) / 8
	if q.ecs {
		rdlen = 8 + alen
	}
	b = append(b, 0, 0, typeOPT, byte(ourUDPSize>>8), byte(ourUDPSize&0xFF),
		byte(rc>>4), 0, do, 0, byte(rdlen>>8), byte(rdlen))
	if q.ecs {
		scope := byte(0)
		if o.ecsUsed && o.pool != nil {
			scope = o.scope
		}
		b = append(b, 0, optECS, byte((4+alen)>>8), byte(4+alen),
			byte(q.ecsFamily>>8), byte(q.ecsFamily), q.ecsSource, scope)
		b = append(b, q.ecsAddrBytes[:alen]...)
	}
	return b
}

// locate places the client: from the ECS address when there is a usable
// one (RFC 7871: a global address, or one inside a configured network),
// else from the resolver's own address.
func (st *state) locate(q *query, src netip.Addr, o *outcome) {
	if st.loc == nil {
		return
	}
	if q.ecs && q.ecsSource > 0 {
		pl, configured, scope := st.loc.locate(q.ecsAddr)
		if configured || (q.ecsAddr.IsGlobalUnicast() && !q.ecsAddr.IsPrivate()) {
			o.place, o.scope, o.ecsUsed = pl, scope, true
			return
		}
	}
	if src.IsValid() {
		o.place, _, _ = st.loc.locate(src)
	}
}

// answer fills the answer, authority and additional sections for a name
// inside the zone.
func (st *state) answer(q *query, src netip.Addr, b []byte, turn uint32, o *outcome) ([]byte, uint16, uint16, uint16, int) {
	name := q.lowerName()
	zonePtr := headerLen + len(name) - len(st.zone)
	e := st.names[string(name)]
	if e == nil {
		b = appendRR(b, zonePtr, st.soaNeg)
		return b, 0, 1, 0, rcodeNXDomain
	}
	var an, ar uint16
	switch e.kind {
	case kindApex:
		switch q.qtype {
		case typeSOA, typeANY: // RFC 8482: one RRset stands for ANY
			b = appendRR(b, headerLen, st.soa)
			an = 1
		case typeNS:
			offs := make([]int, 0, 8)
			for _, rr := range e.ns {
				offs = append(offs, len(b)+12)
				b = appendRR(b, headerLen, rr)
				an++
			}
			for i, h := range e.glue {
				if h == nil {
					continue
				}
				for _, p := range []*pool{h.host4, h.host6} {
					if p != nil {
						b = p.appendAnswers(b, offs[i], turn)
						ar += uint16(p.n)
					}
				}
			}
		}
	case kindDist:
		var p *pool
		b, p = st.answerDist(q, src, e, q.qtype, headerLen, b, turn, o)
		if p != nil {
			an = uint16(p.n)
		}
	case kindAlias:
		b = appendRR(b, headerLen, e.cname)
		an = 1
		if q.qtype != typeCNAME && q.qtype != typeANY {
			var p *pool
			b, p = st.answerDist(q, src, e.tgt, q.qtype, len(b)-len(e.tgt.wire), b, turn, o)
			if p != nil {
				an += uint16(p.n)
			} else {
				// the target has no data of this type: NODATA for it
				b = appendRR(b, zonePtr, st.soaNeg)
				return b, an, 1, 0, rcodeSuccess
			}
		}
	case kindHost:
		var p *pool
		switch q.qtype {
		case typeA, typeANY:
			p = e.host4
		case typeAAAA:
			p = e.host6
		}
		if p != nil {
			b = p.appendAnswers(b, headerLen, turn)
			an = uint16(p.n)
		}
	}
	if an == 0 { // NODATA: the name exists, this type does not
		b = appendRR(b, zonePtr, st.soaNeg)
		return b, 0, 1, 0, rcodeSuccess
	}
	return b, an, 0, ar, rcodeSuccess
}

// answerDist writes a distribution's addresses for the client, owned by
// the name at ptr. It returns the pool used, or nil for no data.
func (st *state) answerDist(q *query, src netip.Addr, e *entry, qtype uint16, ptr int, b []byte, turn uint32, o *outcome) ([]byte, *pool) {
	if qtype != typeA && qtype != typeAAAA && qtype != typeANY {
		return b, nil
	}
	st.locate(q, src, o)
	var p *pool
	if e.latency {
		addr := src
		if o.ecsUsed {
			addr = q.ecsAddr
			// The answer holds for the measured network, no wider.
			o.scope = max(o.scope, uint8(clientNetwork(addr).Bits()))
		}
		switch qtype {
		case typeA, typeANY:
			p = latencyPool(st.lat, e.group, addr, false)
		case typeAAAA:
			p = latencyPool(st.lat, e.group, addr, true)
		}
	}
	switch {
	case p != nil:
		o.byLatency = true
	case qtype == typeA:
		p = e.group.pick(o.place, false)
	case qtype == typeAAAA:
		p = e.group.pick(o.place, true)
	case qtype == typeANY:
		if p = e.group.pick(o.place, false); p == nil {
			p = e.group.pick(o.place, true)
		}
	}
	if p == nil || p.n == 0 {
		return b, nil
	}
	o.pool = p
	return p.appendAnswers(b, ptr, turn), p
}
