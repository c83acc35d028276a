package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

// Namespace is one network namespace of a harness.
type Namespace struct {
	h      *Harness
	name   string
	full   string
	path   string
	holder *exec.Cmd
	nsh    vnetns.NsHandle
	nl     *netlink.Handle
}

// Name is the short name given to Harness.Namespace.
func (n *Namespace) Name() string { return n.name }

// Path is /proc/<holder>/ns/net, for nsenter --net= and setns.
func (n *Namespace) Path() string { return n.path }

// Handle is a netlink handle bound to the namespace. It belongs to the
// harness: do not close it.
func (n *Namespace) Handle() *netlink.Handle { return n.nl }

// NsHandle is an open file descriptor of the namespace (for
// netlink.NewHandleAt). It belongs to the harness: do not close it.
func (n *Namespace) NsHandle() vnetns.NsHandle { return n.nsh }

func (n *Namespace) close() {
	if n.nl != nil {
		n.nl.Close()
		n.nl = nil
	}
	if n.nsh.IsOpen() {
		n.nsh.Close()
	}
	if n.holder != nil && n.holder.Process != nil {
		_ = n.holder.Process.Kill()
		_ = n.holder.Wait()
		n.holder = nil
	}
}

func (n *Namespace) fatalf(format string, args ...any) {
	n.h.t.Helper()
	n.h.t.Fatalf("netns %s: "+format, append([]any{n.name}, args...)...)
}

// Veth creates a veth pair with one end called aName in a and the other
// called bName in b, both up. The pair never exists in the host namespace,
// so the names only need to be unique inside each namespace.
func (h *Harness) Veth(a *Namespace, aName string, b *Namespace, bName string) {
	h.t.Helper()
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: aName},
		PeerName:      bName,
		PeerNamespace: netlink.NsFd(int(b.nsh)),
	}
	if err := a.nl.LinkAdd(v); err != nil {
		h.t.Fatalf("netns: veth %s/%s - %s/%s: %v", a.name, aName, b.name, bName, err)
	}
	a.Up(aName)
	b.Up(bName)
}

func (n *Namespace) link(name string) (netlink.Link, error) {
	l, err := n.nl.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	return l, nil
}

func (n *Namespace) setUp(name string, up bool) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	if up {
		err = n.nl.LinkSetUp(l)
	} else {
		err = n.nl.LinkSetDown(l)
	}
	if err != nil {
		return fmt.Errorf("set %s up=%v: %w", name, up, err)
	}
	return nil
}

// Up brings a link up.
func (n *Namespace) Up(link string) {
	n.h.t.Helper()
	if err := n.setUp(link, true); err != nil {
		n.fatalf("%v", err)
	}
}

// Down takes a link down (failure tests).
func (n *Namespace) Down(link string) {
	n.h.t.Helper()
	if err := n.setUp(link, false); err != nil {
		n.fatalf("%v", err)
	}
}

// Addr adds an address such as "10.0.0.1/24" to a link. IPv6 duplicate
// address detection is turned off so the address is usable at once.
func (n *Namespace) Addr(link, cidr string) {
	n.h.t.Helper()
	l, err := n.link(link)
	if err != nil {
		n.fatalf("%v", err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		n.fatalf("address %q: %v", cidr, err)
	}
	if a.IP.To4() == nil {
		a.Flags |= 0x80 // IFA_F_NODAD
	}
	if err := n.nl.AddrAdd(l, a); err != nil {
		n.fatalf("add %s to %s: %v", cidr, link, err)
	}
}

// Route adds a route to dst ("10.2.0.0/16" or "default") through gw, or,
// when gw is empty, straight out of dev.
func (n *Namespace) Route(dst, gw, dev string) {
	n.h.t.Helper()
	r := netlink.Route{}
	if dst != "default" {
		p, err := netip.ParsePrefix(dst)
		if err != nil {
			n.fatalf("route %q: %v", dst, err)
		}
		r.Dst = &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	}
	if gw != "" {
		a, err := netip.ParseAddr(gw)
		if err != nil {
			n.fatalf("gateway %q: %v", gw, err)
		}
		r.Gw = a.AsSlice()
	}
	if dev != "" {
		l, err := n.link(dev)
		if err != nil {
			n.fatalf("%v", err)
		}
		r.LinkIndex = l.Attrs().Index
	}
	if err := n.nl.RouteAdd(&r); err != nil {
		n.fatalf("add route %s via %q dev %q: %v", dst, gw, dev, err)
	}
}

// Forwarding turns IPv4 and IPv6 forwarding on, for router namespaces.
func (n *Namespace) Forwarding() {
	n.h.t.Helper()
	for _, k := range []string{"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"} {
		if out, err := n.runNoCtx("sysctl", "-qw", k); err != nil {
			n.fatalf("sysctl %s: %v: %s", k, err, out)
		}
	}
}

// Do runs fn on an OS thread switched into the namespace, so sockets fn
// opens (net.Listen, net.Dial) live there. fn must not start processes or
// rely on goroutines it spawns being in the namespace. If the thread cannot
// be switched back it is left locked, and Go retires it with the goroutine.
func (n *Namespace) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := vnetns.Set(n.nsh); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter %s: %w", n.name, err)
			return
		}
		ferr := fn()
		if err := vnetns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave %s: %w", n.name, err))
			return // thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
