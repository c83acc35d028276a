package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/store"
	"github.com/intercloud/intercloud/test/testenv"
)

var units = []string{"store", "controller", "node"}

// notifySocket is what systemd listens on for a Type=notify unit.
type notifySocket struct {
	path string
	msgs chan string
	seen []string
}

func listenNotify(t *testing.T, dir, name string) *notifySocket {
	t.Helper()
	path := filepath.Join(dir, name+".notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: path, msgs: make(chan string, 64)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	t.Cleanup(func() { c.Close() })
	return n
}

// await returns the first datagram from now on that holds the line want.
func (n *notifySocket) await(t *testing.T, d *daemon, want string, within time.Duration) string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				t.Fatalf("%s: notify socket closed before %s", d.name, want)
			}
			n.seen = append(n.seen, m)
			if hasLine(m, want) {
				return m
			}
		case <-d.done:
			t.Fatalf("%s exited (%v) before sending %s; it sent %q", d.name, d.err, want, n.seen)
		case <-deadline:
			t.Fatalf("%s: no %s within %s; it sent %q", d.name, want, within, n.seen)
		}
	}
}

// quiet fails if a datagram holding the line bad arrives while d holds.
func (n *notifySocket) quiet(t *testing.T, name, bad string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-n.msgs:
			n.seen = append(n.seen, m)
			if hasLine(m, bad) {
				t.Fatalf("%s sent %q before it could serve", name, m)
			}
		case <-deadline:
			return
		}
	}
}

func hasLine(datagram, line string) bool {
	for _, l := range strings.Split(datagram, "\n") {
		if l == line || (strings.HasSuffix(line, "=") && strings.HasPrefix(l, line)) {
			return true
		}
	}
	return false
}

// hostRoot stands for the host a unit runs on: %S and %H, and the
// environment file's settings over the unit's Environment= defaults.
type hostRoot struct {
	dir  string
	spec map[byte]string
}

func newHostRoot(t *testing.T) *hostRoot {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return &hostRoot{dir: dir, spec: map[byte]string{'S': filepath.Join(dir, "var/lib"), 'H': host}}
}

// start runs a unit's ExecStart as systemd would (its environment, its
// working and state directories), with a notify socket and a 1 s watchdog.
func (h *hostRoot) start(t *testing.T, name string, settings map[string]string) (*daemon, *notifySocket) {
	t.Helper()
	path := filepath.Join("systemd", "intercloud-"+name+".service")
	u := parseUnit(t, path)
	if got := u.one(t, "Service", "Type"); got != "notify" {
		t.Fatalf("%s: Type=%s, want notify", path, got)
	}
	if u.one(t, "Service", "WatchdogSec") == "" {
		t.Fatalf("%s: no WatchdogSec", path)
	}
	env := u.environment(t)
	for k, v := range settings {
		if _, ok := env[k]; !ok {
			t.Fatalf("%s: setting %s has no Environment= default in the unit", path, k)
		}
		env[k] = v
	}
	argv, err := expand(u.one(t, "Service", "ExecStart"), env, h.spec)
	if err != nil {
		t.Fatalf("%s: ExecStart: %v", path, err)
	}
	if argv[0] != "/usr/local/bin/intercloud" {
		t.Fatalf("%s: ExecStart runs %s, want /usr/local/bin/intercloud (install.sh rewrites that path)", path, argv[0])
	}
	argv[0] = binary
	for _, sd := range u["Service"]["StateDirectory"] {
		if err := os.MkdirAll(filepath.Join(h.spec['S'], sd), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	wd := h.dir
	if w := u["Service"]["WorkingDirectory"]; len(w) == 1 {
		args, err := expand(w[0], env, h.spec)
		if err != nil || len(args) != 1 {
			t.Fatalf("%s: WorkingDirectory=%s: %v", path, w[0], err)
		}
		wd = args[0]
	}
	ns := listenNotify(t, h.dir, name)
	procEnv := []string{"NOTIFY_SOCKET=" + ns.path, "WATCHDOG_USEC=1000000"}
	for k, v := range env {
		procEnv = append(procEnv, k+"="+v)
	}
	sort.Strings(procEnv)
	t.Logf("%s: %s (in %s)", name, strings.Join(argv, " "), wd)
	return startDaemon(t, name, wd, procEnv, argv...), ns
}

const unitSite = `apiVersion: intercloud/v1
kind: Site
name: units
store: {listen: %[1]s, peer: %[2]s, dataDir: store, leaseTTL: 3s}
controller: {admin: %[3]s}
dns: {zone: units.test., ttl: 5s}
clouds:
  - {name: c1, asn: 65001, cidrs: [10.1.0.0/16]}
nodes:
  - name: n1
    cloud: c1
    roles: [dns]
    address: 127.0.0.1
    listen: {dns: %[4]s, admin: %[5]s}
`

const unitDist = `apiVersion: intercloud/v1
kind: Distribution
name: web
spec:
  origins:
    main: {url: "http://127.0.0.1:1"}
  behaviors:
    - {path: "*", target: main}
`

// Each unit's ExecStart, run with a notify socket, says READY=1 only once
// it serves, feeds the watchdog, brackets a reload with RELOADING=1 and
// READY=1, and says STOPPING=1 on SIGTERM — store, controller and node
// together, as on a host.
func TestUnitsNotifySystemd(t *testing.T) {
	h := newHostRoot(t)
	storeAddr, peerAddr := storetest.FreeAddr(t), storetest.FreeAddr(t)
	ctlAddr, dnsAddr, nodeAdmin := storetest.FreeAddr(t), storetest.FreeAddr(t), storetest.FreeAddr(t)
	siteDir := filepath.Join(h.dir, "etc/intercloud/site")
	if err := os.MkdirAll(siteDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The controller's own embedded-store addresses are unused: it is given the store unit.
	if err := os.WriteFile(filepath.Join(siteDir, "site.yaml"), fmt.Appendf(nil, unitSite, storetest.FreeAddr(t), storetest.FreeAddr(t), ctlAddr, dnsAddr, nodeAdmin), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(siteDir, "web.yaml"), []byte(unitDist), 0o644); err != nil {
		t.Fatal(err)
	}
	storeURL := "http://" + storeAddr

	// The store: READY=1 once a client reads through it.
	st, stN := h.start(t, "store", map[string]string{"INTERCLOUD_STORE_NAME": "m1", "INTERCLOUD_STORE_LISTEN": storeAddr, "INTERCLOUD_STORE_PEER": peerAddr})
	stN.await(t, st, "READY=1", 90*time.Second)
	s := storetest.Open(t, []string{storeURL})
	pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := s.Ping(store.RequireLeader(pctx)); err != nil {
		t.Errorf("store said READY=1 but does not serve: %v", err)
	}
	cancel()
	stN.await(t, st, "WATCHDOG=1", 10*time.Second)

	// A node with nothing in the store yet has nothing to serve: no READY=1.
	node, nodeN := h.start(t, "node", map[string]string{"INTERCLOUD_NODE": "n1", "INTERCLOUD_STORE": storeURL})
	nodeN.quiet(t, "node", "READY=1", 2*time.Second)

	// The controller: READY=1 once its API answers and the files are in.
	ctl, ctlN := h.start(t, "controller", map[string]string{"INTERCLOUD_SITE": siteDir, "INTERCLOUD_STORE": storeURL})
	ctlN.await(t, ctl, "READY=1", 60*time.Second)
	var status struct{ Revision int64 }
	if body, code := get("http://" + ctlAddr + "/v1/status"); code != 200 || json.Unmarshal([]byte(body), &status) != nil || status.Revision != 1 {
		t.Errorf("controller said READY=1, but /v1/status answers %d %s", code, body)
	}
	ctlN.await(t, ctl, "WATCHDOG=1", 10*time.Second)

	// Now the node has a revision: READY=1, and it answers DNS with it.
	nodeN.await(t, node, "READY=1", 60*time.Second)
	if serial := soaSerial(t, dnsAddr); serial != 1 {
		t.Errorf("node said READY=1, but its DNS serves serial %d", serial)
	}
	var info struct{ Revision int64 }
	body, code := get("http://" + nodeAdmin + "/v1/node")
	if code != 200 || json.Unmarshal([]byte(body), &info) != nil || info.Revision != 1 {
		t.Errorf("node said READY=1, but /v1/node answers %d %s", code, body)
	}
	nodeN.await(t, node, "WATCHDOG=1", 10*time.Second)

	// systemctl reload: RELOADING=1 with the monotonic time, then READY=1.
	for _, x := range []struct {
		d *daemon
		n *notifySocket
	}{{ctl, ctlN}, {node, nodeN}} {
		if err := x.d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		m := x.n.await(t, x.d, "RELOADING=1", 30*time.Second)
		if !hasLine(m, "MONOTONIC_USEC=") {
			t.Errorf("%s: RELOADING=1 without MONOTONIC_USEC: %q", x.d.name, m)
		}
		x.n.await(t, x.d, "READY=1", 30*time.Second)
	}

	// systemctl stop: STOPPING=1, then a clean exit.
	for _, x := range []struct {
		d *daemon
		n *notifySocket
	}{{node, nodeN}, {ctl, ctlN}, {st, stN}} {
		if err := x.d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		x.n.await(t, x.d, "STOPPING=1", 30*time.Second)
		if err := x.d.stop(t); err != nil {
			t.Errorf("%s: exit after SIGTERM: %v", x.d.name, err)
		}
	}
}

// soaSerial asks a DNS server for the zone's SOA serial (0: no answer).
func soaSerial(t *testing.T, addr string) uint32 {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion("units.test.", mdns.TypeSOA)
	c := &mdns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil || len(r.Answer) == 0 {
		return 0
	}
	if soa, ok := r.Answer[0].(*mdns.SOA); ok {
		return soa.Serial
	}
	return 0
}

// Every unit passes systemd's own check once its binary exists.
func TestUnitsVerify(t *testing.T) {
	analyze := testenv.NeedTool(t, "systemd-analyze", "systemd")
	dir := t.TempDir()
	for _, name := range units {
		src, err := os.ReadFile(filepath.Join("systemd", "intercloud-"+name+".service"))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "intercloud-"+name+".service")
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(src), "/usr/local/bin/intercloud", binary)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", "--man=no", p).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
	}
}
