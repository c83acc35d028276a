package vpn_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/test/testenv"
)

// Our side against the upstream wireguard-go binary configured with the
// stock `wg` tool: handshake and traffic both ways.
func TestInteropUpstream(t *testing.T) {
	testenv.NeedTool(t, "ping", "iputils-ping")
	wg := testenv.NeedTool(t, "wg", "wireguard-tools")
	wggo := testenv.NeedTool(t, "wireguard-go", "wireguard-go")
	tp := newTopo(t, 1400)

	// b: upstream wireguard-go in the foreground (it must not daemonize
	// out of the harness), configured the way an operator would.
	up := tp.b.StartEnv([]string{"WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error"}, wggo, "-f", tp.ifB())
	sock := "/var/run/wireguard/" + tp.ifB() + ".sock"
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case <-up.Done():
			t.Fatalf("wireguard-go exited: %v\n%s", up.Err(), up.Output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("wireguard-go made no UAPI socket:\n%s", up.Output())
		}
	}
	a := tp.site.Links[0].A
	if out, err := exec.Command(wg, "set", tp.ifB(), "private-key", tp.keyB, "listen-port", "51820",
		"peer", a.PublicKey, "endpoint", a.Endpoint, "allowed-ips", "100.64.0.1/32,10.1.0.0/16",
		"persistent-keepalive", "1").CombinedOutput(); err != nil {
		t.Fatalf("wg set: %v\n%s", err, out)
	}
	tp.b.MustRun("ip", "address", "add", "100.64.0.2/30", "dev", tp.ifB())
	tp.b.MustRun("ip", "link", "set", "dev", tp.ifB(), "mtu", "1320", "up")

	// a: ours.
	da := startDaemon(t, tp.a, tp.nodeA)
	da.mustApply(tp.site)
	p := da.waitPeer(true, 10*time.Second)
	tp.cloudRoutes()

	// Both ends start handshaking on their own; when their first
	// initiations cross, WireGuard sorts it out on its next retry (5 s).
	for deadline := time.Now().Add(15 * time.Second); ; {
		if _, recv := ping(t, tp.a, "-c", "1", "-W", "1", "100.64.0.2"); recv == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no traffic through the tunnel: %+v", da.status())
		}
	}
	mustPing(t, tp.a, "100.64.0.2")
	mustPing(t, tp.b, "100.64.0.1")
	mustPing(t, tp.a, "-I", "10.1.0.1", "10.2.0.1")
	mustPing(t, tp.b, "-I", "10.2.0.1", "10.1.0.1")
	mustPing(t, tp.a, "-M", "do", "-s", "1292", "100.64.0.2") // full 1320-byte packets

	if p.Endpoint != underB+":51820" {
		t.Errorf("our peer endpoint %q", p.Endpoint)
	}
	// The upstream side sees us the same way.
	out, err := exec.Command(wg, "show", tp.ifB(), "latest-handshakes").CombinedOutput()
	if err != nil || !strings.Contains(string(out), a.PublicKey) || strings.HasSuffix(strings.TrimSpace(string(out)), "\t0") {
		t.Errorf("upstream has no handshake with us: %v\n%s", err, out)
	}
	// And `wg show` reads our interface like theirs.
	out, err = exec.Command(wg, "show", tp.ifA(), "transfer").CombinedOutput()
	if err != nil || !strings.Contains(string(out), tp.site.Links[0].B.PublicKey) {
		t.Errorf("wg show on our interface: %v\n%s", err, out)
	}
}
