// Package multicloud builds the multi-cloud topology of examples/multicloud
// in network namespaces and tells its story step by step: BGP between the
// clouds and with an on-premises BIRD, GeoDNS, cross-cloud cache fills, a
// dedicated line cut under load, blue/green across clouds and an edge dying.
// TestMultiCloud asserts every step; the demo (./demo, `make demo`) runs the
// same steps and explains them.
package multicloud

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/test/netns"
	"github.com/intercloud/intercloud/test/testenv"
)

// ExampleDir is the config directory the topology runs, relative to the
// repository root (and to the run directory, which links to it).
const ExampleDir = "examples/multicloud"

// Addresses of the layout (examples/multicloud/README.md). The site in
// ExampleDir refers to the same ones.
const (
	StoreURL      = "http://172.30.0.5:2379"
	ControllerURL = "http://172.30.0.5:9170"
	SeoulEdge     = "10.1.0.10"
	TokyoEdge     = "10.2.0.10"
	SeoulOrigin   = "10.1.0.20"
	TokyoOrigin   = "10.2.0.20"
	KRClient      = "10.1.0.100"
	JPClient      = "10.2.0.100"
	OnPremHost    = "10.9.0.1"
	DXSeoul       = "172.31.0.1"
	DXTokyo       = "172.31.0.2"
	TunnelSeoul   = "100.64.0.1"
	TunnelTokyo   = "100.64.0.2"
	OnPremLine    = "172.31.9.2" // on-prem's end of its line to seoul
	OnPremInet    = "172.30.0.9" // on-prem on the internet segment
	TokyoInet     = "172.30.0.2"
	SeoulLineEnd  = "172.31.9.1" // seoul's end of the on-prem line
	Zone          = "cdn.example.test"
	ShopDomain    = "shop." + Zone
	StaticDomain  = "static." + Zone
	// Protocol is the kernel route protocol our gateways mark routes with
	// (route.DefaultProtocol; the site leaves gateway.protocol unset).
	Protocol = "200"
)

// Namespace names: one per node of the site, plus the rest of the world.
const (
	NSControl = "control"
	NSInet    = "inet"
	NSOnPrem  = "onprem"
	NSKR      = "kr-client"
	NSJP      = "jp-client"
)

// Nodes of the site, in start order: gateways first so that routes exist
// by the time edges fetch across clouds.
var Nodes = []string{"seoul-gw", "tokyo-gw", "seoul-origin", "tokyo-origin", "seoul-edge-1", "tokyo-edge-1"}

// Options configure Build.
type Options struct {
	// Binary is the intercloud binary to run.
	Binary string
	// Repo is the repository root (where examples/ lives).
	Repo string

	// The fields below grow the layout for bigger runs (test/soak); left
	// zero, Build makes exactly the layout of ExampleDir.

	// SiteDir is the config directory to run instead of ExampleDir
	// (absolute, or relative to Repo). Its site must keep the layout's
	// addresses and name a node for every namespace.
	SiteDir string
	// Extra are more nodes on the clouds' LANs, each in its own namespace.
	Extra []ExtraNode
	// StoreMembers, when above zero, runs the store as that many separate
	// members (`intercloud store`) in namespaces store-1..N on the
	// internet segment at StoreMemberAddr(i); the site must list their
	// client URLs in store.endpoints.
	StoreMembers int
	// BirdConf is the on-premises BIRD config (absolute, or relative to
	// the run directory); empty is ExampleDir/onprem/bird.conf.
	BirdConf string
	// Prepare, when set, is called once the network is up and before any
	// daemon starts (to make what the daemons expect in the run directory).
	Prepare func(t *Topology)
}

// ExtraNode is a node of Options.Extra: a namespace on cloud's LAN
// ("seoul" or "tokyo") with Addr/16, routed through the cloud's gateway.
type ExtraNode struct {
	Name, Cloud, Addr string
}

// StoreMemberAddr is the internet-segment address of store member i
// (1-based) of Options.StoreMembers.
func StoreMemberAddr(i int) string { return fmt.Sprintf("172.30.0.%d", 10+i) }

// Topology is the built topology with its daemons running.
type Topology struct {
	tb   testing.TB
	h    *netns.Harness
	opts Options
	// Dir is the run directory: every daemon runs there; it holds a link to
	// the repository's examples/ (the site's relative paths resolve through
	// it) and what the daemons write (.intercloud/, state/).
	Dir  string
	Site *config.Snapshot
	ns   map[string]*netns.Namespace
	// procs are the running daemons by namespace (bird in onprem).
	procs map[string]*netns.Proc
	// siteDir is the config directory the controller and the CLI run.
	siteDir string
}

// Build checks the prerequisites, makes every namespace and link of the
// layout, and starts BIRD, the controller (with the store) and one node
// agent per namespace. It does not wait for them: see WaitAllCurrent.
func Build(tb testing.TB, h *netns.Harness, opts Options) *Topology {
	tb.Helper()
	for _, tool := range [][2]string{{"bird", "bird2"}, {"dig", "dnsutils"}, {"curl", "curl"}, {"ip", "iproute2"}, {"ping", "iputils-ping"}, {"wg", "wireguard-tools"}, {"env", "coreutils"}} {
		testenv.NeedTool(tb, tool[0], tool[1])
	}
	testenv.NeedFile(tb, "/dev/net/tun", "a kernel with TUN support (modprobe tun)")
	// The daemons run ExampleDir through the run directory's link to
	// examples/; another site by its absolute path.
	siteDir, load := ExampleDir, filepath.Join(opts.Repo, ExampleDir)
	if opts.SiteDir != "" {
		siteDir = opts.SiteDir
		if !filepath.IsAbs(siteDir) {
			siteDir = filepath.Join(opts.Repo, siteDir)
		}
		load = siteDir
	}
	b, err := config.Load(load)
	if err != nil {
		tb.Fatalf("multicloud: load %s: %v", siteDir, err)
	}
	snap, err := b.Render(nil)
	if err != nil {
		tb.Fatalf("multicloud: render %s: %v", siteDir, err)
	}
	t := &Topology{tb: tb, h: h, opts: opts, Dir: tb.TempDir(), Site: snap, siteDir: siteDir,
		ns: map[string]*netns.Namespace{}, procs: map[string]*netns.Proc{}}
	if err := t.checkSite(snap); err != nil {
		tb.Fatalf("multicloud: %s does not match the layout this package builds: %v", siteDir, err)
	}
	if err := os.Symlink(filepath.Join(opts.Repo, "examples"), filepath.Join(t.Dir, "examples")); err != nil {
		tb.Fatalf("multicloud: link examples: %v", err)
	}
	t.lockInterfaces()
	t.network()
	if opts.Prepare != nil {
		opts.Prepare(t)
	}
	t.startDaemons()
	return t
}

// checkSite compares the addresses the site refers to with the layout, so
// that an edit of one without the other fails here and not as a timeout.
func (t *Topology) checkSite(s *config.Snapshot) error {
	var errs []error
	want := func(what, got, exp string) {
		if got != exp {
			errs = append(errs, fmt.Errorf("%s is %q, the layout has %q", what, got, exp))
		}
	}
	if t.opts.StoreMembers > 0 {
		want("store.endpoints", strings.Join(s.Site.Store.Endpoints, ","), t.StoreURLs())
	} else {
		want("store.listen", "http://"+s.Site.Store.Listen, StoreURL)
	}
	want("controller.admin", "http://"+s.Site.Controller.Admin, ControllerURL)
	for _, n := range []struct{ name, addr string }{{"seoul-edge-1", SeoulEdge}, {"tokyo-edge-1", TokyoEdge}} {
		if node := s.Site.Node(n.name); node == nil {
			errs = append(errs, fmt.Errorf("no node %s", n.name))
		} else {
			want(n.name+".address", node.Address, n.addr)
		}
	}
	var names []string
	for _, n := range s.Site.Nodes {
		names = append(names, n.Name)
	}
	if !slices.Equal(slices.Sorted(slices.Values(names)), slices.Sorted(slices.Values(t.Nodes()))) {
		errs = append(errs, fmt.Errorf("nodes %v, the layout has a namespace for each of %v", names, t.Nodes()))
	}
	if s.Site.Store.LeaseTTL <= 0 {
		errs = append(errs, errors.New("store.leaseTTL must be set (the edge-death step waits for it)"))
	}
	return errors.Join(errs...)
}

// lockInterfaces serializes runs on one host: the gateways' WireGuard
// interfaces are named after the peer node (ic-seoul-gw, ic-tokyo-gw) and
// their UAPI sockets live in /run/wireguard, shared by every namespace, so
// two runs of this topology (the test and the demo) must not overlap. The
// lock is an flock, released by the kernel if we die.
func (t *Topology) lockInterfaces() {
	const path = "/run/intercloud-multicloud.lock"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.tb.Fatalf("multicloud: lock %s: %v", path, err)
	}
	// Long enough for the other run of one `go test ./...` (TestMultiCloud
	// and test/soak's TestSoak build this topology) to finish.
	deadline := time.Now().Add(15 * time.Minute)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			t.tb.Fatalf("multicloud: another run of the topology holds %s (a demo still up?): %v", path, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.tb.Cleanup(func() { f.Close() })
}

// NS returns a namespace of the topology by name (a node name, or one of
// the NS constants).
func (t *Topology) NS(name string) *netns.Namespace {
	ns, ok := t.ns[name]
	if !ok {
		panic("multicloud: no namespace " + name)
	}
	return ns
}

func (t *Topology) namespace(name string) *netns.Namespace {
	ns := t.h.Namespace(name)
	t.ns[name] = ns
	return ns
}

// bridge makes a bridge called name in ns, up.
func (t *Topology) bridge(ns *netns.Namespace, name string) {
	t.tb.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := ns.Handle().LinkAdd(br); err != nil {
		t.tb.Fatalf("multicloud: bridge %s in %s: %v", name, ns.Name(), err)
	}
	ns.Up(name)
}

// port connects member to the bridge br of hub with a veth: the member's
// end is called memberLink, the hub's end portName.
func (t *Topology) port(hub *netns.Namespace, br, portName string, member *netns.Namespace, memberLink string) {
	t.tb.Helper()
	t.h.Veth(member, memberLink, hub, portName)
	nl := hub.Handle()
	p, err := nl.LinkByName(portName)
	if err == nil {
		var b netlink.Link
		if b, err = nl.LinkByName(br); err == nil {
			err = nl.LinkSetMaster(p, b)
		}
	}
	if err != nil {
		t.tb.Fatalf("multicloud: attach %s to %s in %s: %v", portName, br, hub.Name(), err)
	}
}

// network builds the layout of examples/multicloud/README.md.
func (t *Topology) network() {
	t.tb.Helper()
	inet := t.namespace(NSInet)
	t.bridge(inet, "br")

	type cloud struct {
		name, net, inet, client, clientNS string
	}
	for _, c := range []cloud{
		{"seoul", "10.1", "172.30.0.1/24", KRClient, NSKR},
		{"tokyo", "10.2", "172.30.0.2/24", JPClient, NSJP},
	} {
		gw := t.namespace(c.name + "-gw")
		gw.Forwarding()
		t.bridge(gw, "lan")
		gw.Addr("lan", c.net+".0.1/16")
		t.port(inet, "br", c.name, gw, "inet")
		gw.Addr("inet", c.inet)
		for _, m := range []struct{ ns, port, addr string }{
			{c.name + "-edge-1", "edge", c.net + ".0.10"},
			{c.name + "-origin", "origin", c.net + ".0.20"},
			{c.clientNS, "client", c.client},
		} {
			n := t.namespace(m.ns)
			t.port(gw, "lan", m.port, n, "lan")
			n.Addr("lan", m.addr+"/16")
			n.Route("default", c.net+".0.1", "")
		}
	}
	for i, x := range t.opts.Extra {
		net := map[string]string{"seoul": "10.1", "tokyo": "10.2"}[x.Cloud]
		if net == "" {
			t.tb.Fatalf("multicloud: extra node %s: unknown cloud %q", x.Name, x.Cloud)
		}
		n := t.namespace(x.Name)
		t.port(t.NS(x.Cloud+"-gw"), "lan", fmt.Sprintf("x%d", i), n, "lan")
		n.Addr("lan", x.Addr+"/16")
		n.Route("default", net+".0.1", "")
	}
	seoul, tokyo := t.NS("seoul-gw"), t.NS("tokyo-gw")

	// The dedicated line.
	t.h.Veth(seoul, "dx", tokyo, "dx")
	seoul.Addr("dx", DXSeoul+"/30")
	tokyo.Addr("dx", DXTokyo+"/30")

	// On-premises: a line to seoul, a port on the internet, and a host of
	// its own network
	op := t.namespace(NSOnPrem)
	op.Forwarding()
	t.h.Veth(seoul, "op", op, "op")
	seoul.Addr("op", SeoulLineEnd+"/30")
	op.Addr("op", OnPremLine+"/30")
	t.port(inet, "br", "onprem", op, "inet")
	op.Addr("inet", OnPremInet+"/24")
	// (on loopback: this kernel may have no dummy interfaces)
	op.Addr("lo", OnPremHost+"/32")

	// The control plane on the internet segment, routed into each cloud
	// through its gateway (it does not forward: no path between clouds).
	ctl := t.namespace(NSControl)
	t.port(inet, "br", "control", ctl, "inet")
	ctl.Addr("inet", "172.30.0.5/24")
	ctl.Route("10.1.0.0/16", "172.30.0.1", "")
	ctl.Route("10.2.0.0/16", "172.30.0.2", "")

	// Separate store members beside it, routed the same way.
	for i := 1; i <= t.opts.StoreMembers; i++ {
		t.InetHost(StoreMemberNS(i), StoreMemberAddr(i))
	}
}

// InetHost makes a namespace called name on the internet segment with
// addr/24, routed into both clouds through their gateways like the
// control namespace (for peers a run adds: a hostile BGP speaker).
func (t *Topology) InetHost(name, addr string) *netns.Namespace {
	t.tb.Helper()
	n := t.namespace(name)
	t.port(t.NS(NSInet), "br", name, n, "inet")
	n.Addr("inet", addr+"/24")
	n.Route("10.1.0.0/16", "172.30.0.1", "")
	n.Route("10.2.0.0/16", "172.30.0.2", "")
	return n
}

// StoreMemberNS is the namespace of store member i (1-based).
func StoreMemberNS(i int) string { return fmt.Sprintf("store-%d", i) }

// Nodes are the names of the site's nodes this topology runs: Nodes and
// Options.Extra.
func (t *Topology) Nodes() []string {
	ns := slices.Clone(Nodes)
	for _, x := range t.opts.Extra {
		ns = append(ns, x.Name)
	}
	return ns
}

// StoreURLs is the store's client URLs, comma-separated, as agents and
// the controller are given them.
func (t *Topology) StoreURLs() string {
	if t.opts.StoreMembers == 0 {
		return StoreURL
	}
	var us []string
	for i := 1; i <= t.opts.StoreMembers; i++ {
		us = append(us, "http://"+StoreMemberAddr(i)+":2379")
	}
	return strings.Join(us, ",")
}

// daemon starts the intercloud binary (or another program) in ns with the
// run directory as working directory.
func (t *Topology) daemon(ns *netns.Namespace, prog string, args ...string) *netns.Proc {
	return ns.Start("env", append([]string{"-C", t.Dir, prog}, args...)...)
}

func (t *Topology) startDaemons() {
	t.tb.Helper()
	conf := t.opts.BirdConf
	if conf == "" {
		conf = ExampleDir + "/onprem/bird.conf"
	}
	bird := t.daemon(t.NS(NSOnPrem), "bird", "-f", "-c", conf, "-s", filepath.Join(t.Dir, "bird.ctl"))
	t.procs[NSOnPrem] = bird
	for i := 1; i <= t.opts.StoreMembers; i++ {
		t.StartStoreMember(i)
	}
	t.StartController()
	if err := t.waitHTTP(NSControl, ControllerURL+"/readyz", 30*time.Second); err != nil {
		t.tb.Fatalf("multicloud: controller: %v", err)
	}
	for _, n := range t.Nodes() {
		t.StartNode(n)
	}
}

// StartController starts the controller in the control namespace (again,
// after KillNode(NSControl)); it runs the store itself unless the
// topology has separate members.
func (t *Topology) StartController() {
	args := []string{"controller", "-f", t.siteDir}
	if t.opts.StoreMembers > 0 {
		args = append(args, "--store", t.StoreURLs())
	}
	t.procs[NSControl] = t.daemon(t.NS(NSControl), t.opts.Binary, args...)
}

// StartStoreMember starts store member i (1-based; again, after
// KillNode(StoreMemberNS(i))) with its data under the run directory.
func (t *Topology) StartStoreMember(i int) {
	var initial []string
	for j := 1; j <= t.opts.StoreMembers; j++ {
		initial = append(initial, fmt.Sprintf("m%d=http://%s:2380", j, StoreMemberAddr(j)))
	}
	a := StoreMemberAddr(i)
	t.procs[StoreMemberNS(i)] = t.daemon(t.NS(StoreMemberNS(i)), t.opts.Binary, "store",
		"--name", fmt.Sprintf("m%d", i), "--data-dir", filepath.Join("store", StoreMemberNS(i)),
		"--listen", a+":2379", "--peer", a+":2380", "--initial-cluster", strings.Join(initial, ","))
}

// StartNode starts the agent of node in its namespace (again, after
// StopNode or KillNode). Its last known good snapshot is kept in
// state/<node> under the run directory.
func (t *Topology) StartNode(node string) {
	t.procs[node] = t.daemon(t.NS(node), t.opts.Binary, "node", "--name", node, "--store", t.StoreURLs(),
		"--state-dir", filepath.Join("state", node))
}

// Proc is the running process of a namespace (a node's agent, the
// controller in NSControl, BIRD in NSOnPrem, a store member), or nil.
func (t *Topology) Proc(ns string) *netns.Proc { return t.procs[ns] }

// KillNode kills a node's agent at once (a crash: its lease is not revoked).
func (t *Topology) KillNode(node string) {
	if p := t.procs[node]; p != nil {
		p.Kill()
	}
}

// DumpNode makes a node's agent print its goroutines and exit (SIGQUIT),
// for post-mortems of a step that failed.
func (t *Topology) DumpNode(node string) {
	if p := t.procs[node]; p != nil {
		_ = p.Signal(syscall.SIGQUIT)
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

// Pid is the pid of the process holding ns (for nsenter --net=/proc/PID/ns/net).
func (t *Topology) Pid(ns string) string {
	p := t.NS(ns).Path() // /proc/<pid>/ns/net
	return strings.TrimSuffix(strings.TrimPrefix(p, "/proc/"), "/ns/net")
}

// Enter is the shell prefix that runs a command inside ns.
func (t *Topology) Enter(ns string) string {
	return "nsenter --net=" + t.NS(ns).Path() + " --"
}

// Run runs a command inside ns with the run directory as working
// directory and returns its combined output.
func (t *Topology) Run(ctx context.Context, ns, prog string, args ...string) (string, error) {
	out, err := t.NS(ns).Run(ctx, "env", append([]string{"-C", t.Dir, prog}, args...)...)
	return string(out), err
}

// CLI runs `intercloud CMD -f examples/multicloud ARGS` in the control
// namespace, where the controller's API and token are.
func (t *Topology) CLI(ctx context.Context, args ...string) (string, error) {
	full := append([]string{args[0], "-f", t.siteDir}, args[1:]...)
	return t.Run(ctx, NSControl, t.opts.Binary, full...)
}

func (t *Topology) waitHTTP(ns, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return Eventually(ctx, 200*time.Millisecond, func() error {
		out, err := t.Run(ctx, ns, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", url)
		if err != nil {
			return fmt.Errorf("GET %s: %v: %s", url, err, out)
		}
		if out != "200" {
			return fmt.Errorf("GET %s: status %s", url, out)
		}
		return nil
	})
}

// Eventually calls fn every interval until it returns nil or ctx ends; it
// returns fn's last error then.
func Eventually(ctx context.Context, interval time.Duration, fn func() error) error {
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %v)", err, context.Cause(ctx))
		case <-time.After(interval):
		}
	}
}

// Harness is the netns harness the topology was built with.
func (t *Topology) Harness() *netns.Harness { return t.h }

// Build the intercloud binary into dir (for the test's TestMain).
func BuildBinary(repo, dir string) (string, error) {
	bin := filepath.Join(dir, "intercloud")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/intercloud")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build intercloud: %v\n%s", err, out)
	}
	return bin, nil
}
