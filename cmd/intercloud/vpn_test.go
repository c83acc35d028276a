package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/vpn"
)

func TestPrintVPN(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	st := vpn.Status{Node: "seoul-gw", Interfaces: []vpn.InterfaceStatus{{
		Name: "ic-tokyo-gw", Link: "vpn", PublicKey: "AAAA", ListenPort: 51820,
		Address: netip.MustParsePrefix("100.64.0.1/30"), MTU: 1320,
		Peer: vpn.PeerState{
			Node: "tokyo-gw", PublicKey: "BBBB", Address: netip.MustParseAddr("100.64.0.2"),
			Endpoint: "10.9.0.2:51820", AllowedIPs: []netip.Prefix{netip.MustParsePrefix("100.64.0.2/32"), netip.MustParsePrefix("10.2.0.0/16")},
			Up: false, Reason: "nothing received for 15s (keepalive 5s)", Since: now.Add(-65 * time.Second),
			LastHandshake: now.Add(-65 * time.Second), RxBytes: 1536, TxBytes: 3 << 20, Keepalive: 5,
		},
	}}}
	var b bytes.Buffer
	printVPN(&b, st, now)
	for _, want := range []string{
		"interface: ic-tokyo-gw (link vpn)",
		"listening port: 51820",
		"peer: BBBB (tokyo-gw, 100.64.0.2)",
		"state: down: nothing received for 15s (keepalive 5s) (for 00:01:05)",
		"endpoint: 10.9.0.2:51820",
		"allowed ips: 100.64.0.2/32, 10.2.0.0/16",
		"latest handshake: 1 minute, 5 seconds ago",
		"transfer: 1.50 KiB received, 3.00 MiB sent",
		"persistent keepalive: every 5 seconds",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in:\n%s", want, b.String())
		}
	}
	b.Reset()
	printVPN(&b, vpn.Status{Node: "x"}, now)
	if !strings.Contains(b.String(), "no tunnels") {
		t.Errorf("empty status: %q", b.String())
	}
}

func TestKeygen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.key")
	var out bytes.Buffer
	if err := keygen(&out, []string{"--out", path}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	k, err := vpn.ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := k.PublicKey()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[len(lines)-1] != pub.String() {
		t.Fatalf("last line %q, want the public key %s", lines[len(lines)-1], pub)
	}
	if strings.Contains(out.String(), k.String()) {
		t.Fatal("keygen printed the private key")
	}
	if err := keygen(&out, []string{"--out", path}); err == nil {
		t.Fatal("keygen overwrote a key without --force")
	}
	if err := keygen(&out, []string{"--out", path, "--force"}); err != nil {
		t.Fatal(err)
	}
	if err := keygen(&out, nil); err == nil {
		t.Fatal("keygen without --out")
	}
}

// vpn show against a node admin API: the table and -j both come from
// GET /v1/vpn, and a node without the gateway role is a clear error.
func TestVPNShowFromNode(t *testing.T) {
	st := vpn.Status{Node: "seoul-gw", Interfaces: []vpn.InterfaceStatus{{
		Name: "ic-tokyo-gw", Link: "vpn", PublicKey: "AAAA", ListenPort: 51820, MTU: 1320,
		Peer: vpn.PeerState{Node: "tokyo-gw", PublicKey: "BBBB", Up: true, RxBytes: 10, TxBytes: 20},
	}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/vpn", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(st) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"show", "--node", srv.URL}, "interface: ic-tokyo-gw (link vpn)"},
		{[]string{"show", "-j", "--node", srv.URL}, `"name": "ic-tokyo-gw"`},
	} {
		out := captureStdout(t, func() error { return runVPN(context.Background(), tc.args) })
		if !strings.Contains(out, tc.want) {
			t.Errorf("vpn %v: missing %q in:\n%s", tc.args, tc.want, out)
		}
	}
	t.Setenv("INTERCLOUD_NODE", srv.URL+"/nope")
	if err := runVPN(context.Background(), []string{"show"}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("node without the route: %v", err)
	}
}

func captureStdout(t *testing.T, fn func() error) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	ferr := fn()
	os.Stdout = old
	w.Close()
	out := <-done
	if ferr != nil {
		t.Fatalf("%v\n%s", ferr, out)
	}
	return out
}
