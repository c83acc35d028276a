package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/test/netns"
	"github.com/intercloud/intercloud/test/testenv"
)

// The whole site runs inside one namespace of the test's own, so its fixed
// addresses are the namespace's loopback: g1 runs, its peer is declared
// but never started (its tunnel never shakes hands, so BGP over it is not
// even configured), and an on-premises neighbor never answers (its session
// stays down): what the alerts are about.
const gatewaySite = `apiVersion: intercloud/v1
kind: Site
name: gw
store: {listen: 127.0.0.1:2379, peer: 127.0.0.1:2380, dataDir: %[1]s/store, leaseTTL: 3s}
controller: {admin: 127.0.0.1:9170}
dns: {zone: gw.test., ttl: 5s}
clouds:
  - {name: c1, asn: 65001, cidrs: [10.1.0.0/16]}
  - {name: c2, asn: 65002, cidrs: [10.2.0.0/16]}
nodes:
  - name: g1
    cloud: c1
    roles: [gateway]
    listen: {admin: 127.0.0.1:9180}
    gateway:
      routerId: 10.1.0.1
      wireguard: {privateKeyFile: %[1]s/g1.key, listenPort: 51820}
      # An on-premises router that never answers: a session that stays down.
      neighbors:
        - {name: onprem, address: 127.0.0.3, asn: 65009, prefixes: [10.9.0.0/16]}
  - name: %[2]s
    cloud: c2
    roles: [gateway]
    listen: {admin: 127.0.0.2:9180}
    gateway:
      routerId: 10.2.0.1
      wireguard: {privateKeyFile: %[1]s/peer.key, listenPort: 51821}
links:
  - name: vpn
    kind: vpn
    a: {node: g1, endpoint: "127.0.0.1:51820", tunnel: 100.64.0.1/30, publicKey: "%[3]s"}
    b: {node: %[2]s, endpoint: "127.0.0.2:51821", tunnel: 100.64.0.2/30, publicKey: "%[4]s"}
    persistentKeepalive: 1s
`

// gatewayMetrics checks the gateway's names against a real gateway node.
func gatewayMetrics(t *testing.T, names []string) {
	testenv.NeedFile(t, "/dev/net/tun", "a kernel with TUN (modprobe tun)")
	curl := testenv.NeedTool(t, "curl", "curl")
	h := netns.New(t)
	ns := h.Namespace("gw")
	dir := t.TempDir()
	peer := h.Name("p") // names the TUN device: unique on the host
	pub := map[string]string{}
	for _, k := range []string{"g1", "peer"} {
		out, err := exec.Command(binary, "keygen", "--out", filepath.Join(dir, k+".key")).Output()
		if err != nil {
			t.Fatalf("keygen: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		pub[k] = lines[len(lines)-1]
	}
	cfg := filepath.Join(dir, "cfg")
	if err := os.MkdirAll(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "site.yaml"), fmt.Appendf(nil, gatewaySite, dir, peer, pub["g1"], pub["peer"]), 0o644); err != nil {
		t.Fatal(err)
	}
	ns.Start(binary, "controller", "-f", cfg)
	ns.Start(binary, "node", "--name", "g1", "--store", "http://127.0.0.1:2379", "--state-dir", filepath.Join(dir, "g1"))

	var body string
	var missing []string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := ns.Run(ctx, curl, "-sf", "http://127.0.0.1:9180/metrics")
		cancel()
		missing = missing[:0]
		if err == nil {
			body = string(out)
			have := parseMetrics(t, "g1", body)
			for _, n := range names {
				if gatewayMetric(n) && have[family(n, have)] == nil {
					missing = append(missing, n)
				}
			}
			if len(missing) == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway g1: /metrics (%v) lacks %v", err, missing)
		}
	}
	lint(t, "g1", body)
}
