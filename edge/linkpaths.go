package edge

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intercloud/intercloud/config"
)

// Gateway links as candidate paths. Where this edge's cloud and an
// origin's cloud are joined by several gateway links (a dedicated line
// and a VPN), each link is a path "link:NAME" and they replace the
// direct one: a fetch over a link dials with the link's DSCP
// (config.LinkPath), and the gateways route what carries it, and its
// replies, over that link. The direct path would be one of the links
// under another name (the one BGP prefers), measured twice and chosen
// apart: so the link BGP prefers (a dedicated line before a VPN) is the
// preferred path instead, taken back once no worse. A link whose table
// has no route (the line is down) falls through to the main table.

const linkPrefix = "link:"

// linkRef is one link path of an origin.
type linkRef struct {
	id     string // "link:NAME"
	client *http.Client
}

// attachLinks gives each origin of dd that lives in another cloud (its
// URL's host is an address in that cloud's CIDRs) the link paths between
// this node's cloud and that one. Origins named by host name are left
// direct: where they live is not known before the fetch.
func attachLinks(d *dist, dd *config.Distribution, site *config.Site, node string, pool *clientPool) {
	me := site.Node(node)
	if me == nil {
		return
	}
	seen := map[*originRef]bool{}
	for _, b := range d.behaviors {
		if b.target == nil {
			continue
		}
		for _, o := range b.target.members {
			if seen[o] {
				continue
			}
			seen[o] = true
			a, err := netip.ParseAddr(strings.Trim(o.base.Hostname(), "[]"))
			if err != nil {
				continue
			}
			cloud := cloudOf(site, a.Unmap())
			if cloud == "" || cloud == me.Cloud {
				continue
			}
			oc, ok := dd.Spec.Origins[o.name]
			if !ok {
				continue
			}
			o.links = nil
			lps := site.LinkPaths(me.Cloud, cloud)
			// BGP's preference first: dedicated lines before VPNs.
			slices.SortStableFunc(lps, func(a, b config.LinkPath) int {
				return cmpBool(a.Kind != config.LinkDedicated, b.Kind != config.LinkDedicated)
			})
			for _, lp := range lps {
				o.links = append(o.links, linkRef{id: linkPrefix + lp.Link, client: pool.clientTOS(oc, lp.TOS())})
			}
		}
	}
}

// cloudOf is the cloud whose CIDRs hold a (the longest match).
func cloudOf(site *config.Site, a netip.Addr) string {
	best, bits := "", -1
	for _, c := range site.Clouds {
		for _, p := range c.CIDRs {
			if p.Contains(a) && p.Bits() > bits {
				best, bits = c.Name, p.Bits()
			}
		}
	}
	return best
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// linkClient is o's client for path id ("direct" or "link:NAME"); nil
// for another id.
func (o *originRef) linkClient(id string) *http.Client {
	if id == pathDirect {
		return o.client
	}
	for _, l := range o.links {
		if l.id == id {
			return l.client
		}
	}
	return nil
}

// originPaths is the order in which a fetch from o tries its paths:
// direct when o has no links; else its links as measured (the chosen one
// first) when the paths are chosen, in preference order otherwise.
func (e *Edge) originPaths(o *originRef, choose bool) []string {
	if len(o.links) == 0 {
		return []string{pathDirect}
	}
	out := make([]string, 0, len(o.links))
	if choose {
		for _, id := range e.paths.order(o.key) {
			if strings.HasPrefix(id, linkPrefix) && o.linkClient(id) != nil {
				out = append(out, id)
			}
		}
	}
	if len(out) == len(o.links) {
		// Now and then a miss measures a link not in use (explore).
		if id := e.paths.explore(o.key, out[1:], time.Now()); id != "" {
			i := slices.Index(out, id)
			copy(out[1:i+1], out[:i])
			out[0] = id
		}
		return out
	}
	out = out[:0]
	for _, l := range o.links {
		out = append(out, l.id)
	}
	return out
}

// directIDs are the candidate ids of o's own paths: its links, else
// direct.
func (o *originRef) directIDs() []string {
	if len(o.links) == 0 {
		return []string{pathDirect}
	}
	out := make([]string, len(o.links))
	for i, l := range o.links {
		out[i] = l.id
	}
	return out
}

// markTOS is a dialer Control that sets the socket's TOS (IPv4) or
// traffic class (IPv6); nil for 0.
func markTOS(tos int) func(network, address string, c syscall.RawConn) error {
	if tos == 0 {
		return nil
	}
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if strings.HasSuffix(network, "6") {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_TCLASS, tos)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TOS, tos)
			}
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("edge: set TOS %#x on a %s socket: %w", tos, network, serr)
		}
		return nil
	}
}
