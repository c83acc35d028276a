package dns

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// The request path parses the few fields it needs straight from the packet
// and writes answers from records packed when the state was built, so a
// query costs one pass over its bytes and no allocation. miekg/dns packs
// those records (state.go) and checks every answer in the tests.

const (
	headerLen = 12
	maxName   = 255

	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagCD = 1 << 4

	typeA     = 1
	typeNS    = 2
	typeCNAME = 5
	typeSOA   = 6
	typeAAAA  = 28
	typeOPT   = 41
	typeANY   = 255
	classIN   = 1

	rcodeSuccess  = 0
	rcodeFormErr  = 1
	rcodeServFail = 2
	rcodeNXDomain = 3
	rcodeNotImp   = 4
	rcodeRefused  = 5
	rcodeBadVers  = 16

	optECS = 8

	// ourUDPSize is the EDNS buffer we advertise and the most we send over
	// UDP: 1232 avoids IP fragmentation on any path (DNS flag day 2020).
	ourUDPSize = 1232
)

var (
	errShort    = errors.New("short message")
	errResponse = errors.New("message is a response")
)

// query is what the handler needs from a request.
type query struct {
	id, flags    uint16
	opcode       uint8
	qname        []byte // as sent (case kept), wire format, inside the request
	lower        [maxName]byte
	qtype        uint16
	qclass       uint16
	question     []byte // the whole question entry as sent
	edns         bool
	ednsVersion  uint8
	do           bool
	udpSize      uint16
	ecs          bool
	ecsFamily    uint16
	ecsSource    uint8
	ecsAddr      netip.Addr
	ecsAddrBytes [16]byte
}

// lowerName is the lowercased qname, the key of the names map.
func (q *query) lowerName() []byte { return q.lower[:len(q.qname)] }

// parseHeader reads the header; a request too short to carry an ID, or a
// response, is dropped rather than answered.
func (q *query) parseHeader(m []byte) error {
	if len(m) < headerLen {
		return errShort
	}
	q.id = binary.BigEndian.Uint16(m)
	q.flags = binary.BigEndian.Uint16(m[2:])
	if q.flags&flagQR != 0 {
		return errResponse
	}
	q.opcode = uint8(q.flags>>11) & 0xF
	return nil
}

// parse reads the question and the OPT record. It returns an rcode: not
// success means answer with that rcode (FORMERR, BADVERS).
func (q *query) parse(m []byte) int {
	qd := binary.BigEndian.Uint16(m[4:])
	an := binary.BigEndian.Uint16(m[6:])
	ns := binary.BigEndian.Uint16(m[8:])
	ar := binary.BigEndian.Uint16(m[10:])
	if qd != 1 || an != 0 || ns != 0 {
		return rcodeFormErr
	}
	off := headerLen
	for {
		if off >= len(m) {
			return rcodeFormErr
		}
		l := int(m[off])
		if l == 0 {
			off++
			break
		}
		if l&0xC0 != 0 { // no compression in a lone question, no extended labels
			return rcodeFormErr
		}
		if off+1+l > len(m) || off+1+l-headerLen >= maxName {
			return rcodeFormErr
		}
		q.lower[off-headerLen] = byte(l)
		for i := off + 1; i <= off+l; i++ {
			c := m[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			q.lower[i-headerLen] = c
		}
		off += 1 + l
	}
	q.lower[off-1-headerLen] = 0
	q.qname = m[headerLen:off]
	if off+4 > len(m) {
		return rcodeFormErr
	}
	q.qtype = binary.BigEndian.Uint16(m[off:])
	q.qclass = binary.BigEndian.Uint16(m[off+2:])
	off += 4
	q.question = m[headerLen:off]
	for ; ar > 0; ar-- {
		var rc int
		if off, rc = q.parseAdditional(m, off); rc != rcodeSuccess {
			return rc
		}
	}
	if q.edns && q.ednsVersion != 0 {
		return rcodeBadVers
	}
	return rcodeSuccess
}

// parseAdditional reads one additional record: OPT is used, others (a TSIG
// we cannot check, stray records) are skipped.
func (q *query) parseAdditional(m []byte, off int) (int, int) {
	nameStart := off
	for { // owner name, possibly compressed
		if off >= len(m) {
			return off, rcodeFormErr
		}
		l := int(m[off])
		if l == 0 {
			off++
			break
		}
		if l&0xC0 == 0xC0 {
			off += 2
			break
		}
		if l&0xC0 != 0 {
			return off, rcodeFormErr
		}
		off += 1 + l
	}
	if off+10 > len(m) {
		return off, rcodeFormErr
	}
	typ := binary.BigEndian.Uint16(m[off:])
	class := binary.BigEndian.Uint16(m[off+2:])
	ttl := binary.BigEndian.Uint32(m[off+4:])
	rdlen := int(binary.BigEndian.Uint16(m[off+8:]))
	off += 10
	if off+rdlen > len(m) {
		return off, rcodeFormErr
	}
	rdata := m[off : off+rdlen]
	off += rdlen
	if typ != typeOPT {
		return off, rcodeSuccess
	}
	if q.edns || off-rdlen-10 != nameStart+1 || m[nameStart] != 0 { // one OPT, owned by the root
		return off, rcodeFormErr
	}
	q.edns = true
	q.udpSize = max(class, 512)
	q.ednsVersion = uint8(ttl >> 16)
	q.do = ttl&(1<<15) != 0
	for len(rdata) > 0 {
		if len(rdata) < 4 {
			return off, rcodeFormErr
		}
		code := binary.BigEndian.Uint16(rdata)
		olen := int(binary.BigEndian.Uint16(rdata[2:]))
		if 4+olen > len(rdata) {
			return off, rcodeFormErr
		}
		if code == optECS {
			if q.ecs || !q.parseECS(rdata[4:4+olen]) {
				return off, rcodeFormErr
			}
		}
		rdata = rdata[4+olen:]
	}
	return off, rcodeSuccess
}

// parseECS checks an EDNS Client Subnet option as RFC 7871 §7.1.2 asks:
// a known family, a source length within it, exactly enough address bytes,
// and no bits set past the source length.
func (q *query) parseECS(o []byte) bool {
	if len(o) < 4 {
		return false
	}
	fam := binary.BigEndian.Uint16(o)
	src := o[2]
	addr := o[4:]
	width := 0
	switch fam {
	case 1:
		width = 32
	case 2:
		width = 128
	default:
		return false
	}
	if int(src) > width || len(addr) != (int(src)+7)/8 {
		return false
	}
	if src%8 != 0 && len(addr) > 0 && addr[len(addr)-1]&(0xFF>>(src%8)) != 0 {
		return false
	}
	q.ecs, q.ecsFamily, q.ecsSource = true, fam, src
	q.ecsAddrBytes = [16]byte{}
	copy(q.ecsAddrBytes[:], addr)
	if fam == 1 {
		q.ecsAddr = netip.AddrFrom4([4]byte(q.ecsAddrBytes[:4]))
	} else {
		q.ecsAddr = netip.AddrFrom16(q.ecsAddrBytes)
	}
	return true
}

// appendRR writes one record whose owner is a compression pointer to ptr
// and whose type, class, TTL and rdata are packed in rest.
func appendRR(b []byte, ptr int, rest []byte) []byte {
	b = append(b, byte(0xC0|ptr>>8), byte(ptr))
	return append(b, rest...)
}

// rrTail packs everything after the owner name of a record.
func rrTail(typ uint16, ttl uint32, rdata []byte) []byte {
	b := make([]byte, 10, 10+len(rdata))
	binary.BigEndian.PutUint16(b, typ)
	binary.BigEndian.PutUint16(b[2:], classIN)
	binary.BigEndian.PutUint32(b[4:], ttl)
	binary.BigEndian.PutUint16(b[8:], uint16(len(rdata)))
	return append(b, rdata...)
}
