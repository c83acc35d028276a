package edge

import (
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/test/testenv"
)

// The edge's own sockets and the certificates it serves, broken from the
// outside: a renewed certificate pair the edge cannot notice (its mtimes
// put back), the listening socket killed with ss -K, then its port taken
// by another socket. Drift names each, Heal puts each back.
func TestDriftListenerAndCertificate(t *testing.T) {
	testenv.NeedRoot(t) // ss -K needs CAP_NET_ADMIN
	ss := testenv.NeedTool(t, "ss", "iproute2")
	dir := t.TempDir()
	crt, key := writeCert(t, dir, "shop", 1, "shop.cdn.test", "www.shop.test")
	d := simple("http://127.0.0.1:9")
	d.Spec.TLS = config.TLS{CertFile: crt, KeyFile: key}
	snap := site(1, d)
	httpAddr, httpsAddr := storetest.FreeAddr(t), storetest.FreeAddr(t)
	snap.Site.Nodes[0].Listen = config.Listen{HTTP: httpAddr, HTTPS: httpsAddr}
	h := newHarness(t, nil, snap)
	ctx := t.Context()
	drift := func(t *testing.T) []status.DriftResource {
		t.Helper()
		rs, err := h.e.Drift(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	if rs := drift(t); len(rs) != 0 {
		t.Fatalf("fresh edge drifted: %+v", rs)
	}

	t.Run("certificate", func(t *testing.T) {
		old := []time.Time{mtime(t, crt), mtime(t, key)}
		writeCert(t, dir, "shop", 9, "shop.cdn.test", "www.shop.test")
		os.Chtimes(crt, old[0], old[0])
		os.Chtimes(key, old[1], old[1])
		rs := drift(t)
		if len(rs) != 2 || rs[0].ID != "edge sni shop.cdn.test" || rs[1].ID != "edge sni www.shop.test" {
			t.Fatalf("drift: %+v", rs)
		}
		for _, r := range rs {
			if r.Kind != status.DriftCertificate || !strings.Contains(r.Expected, "serial 9") || !strings.Contains(r.Actual, "serial 1") {
				t.Fatalf("resource %+v", r)
			}
			if err := h.e.Heal(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if rs := drift(t); len(rs) != 0 {
			t.Fatalf("after heal: %+v", rs)
		}
		c, err := tls.Dial("tcp", httpsAddr, &tls.Config{ServerName: "shop.cdn.test", InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if s := c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); s != 9 {
			t.Fatalf("served serial %d after heal", s)
		}
	})

	t.Run("listener", func(t *testing.T) {
		iperf := testenv.NeedTool(t, "iperf3", "iperf3")
		if out, err := exec.Command(ss, "-K", "state", "listening", "src", httpAddr).CombinedOutput(); err != nil {
			t.Fatalf("ss -K: %v\n%s", err, out)
		}
		rs := drift(t)
		if len(rs) == 0 {
			// A kernel without CONFIG_INET_DIAG_DESTROY ignores ss -K:
			// close ours the way the kill would have.
			t.Log("ss -K had no effect (kernel without CONFIG_INET_DIAG_DESTROY): closing the socket instead")
			h.e.mu.Lock()
			for _, l := range h.e.servers {
				if !l.TLS() {
					l.Stop(0)
				}
			}
			h.e.mu.Unlock()
			rs = drift(t)
		}
		if len(rs) != 1 || rs[0].Kind != status.DriftListener || rs[0].ID != "edge http "+httpAddr || rs[0].Actual != "not bound" {
			t.Fatalf("our socket closed: %+v", rs)
		}
		// Another process takes the port before we put ours back.
		host, port, _ := net.SplitHostPort(httpAddr)
		other := exec.Command(iperf, "-s", "-B", host, "-p", port)
		other.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := other.Start(); err != nil {
			t.Fatal(err)
		}
		defer other.Process.Kill()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if rs = drift(t); len(rs) == 1 && strings.HasPrefix(rs[0].Actual, "held by") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("iperf3 never showed on the port: %+v", rs)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if want := "held by pid " + strconv.Itoa(other.Process.Pid) + " (iperf3)"; !strings.HasPrefix(rs[0].Actual, want) {
			t.Fatalf("actual %q, want %q…", rs[0].Actual, want)
		}
		if err := h.e.Heal(ctx, rs[0]); err == nil || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("heal while the port is taken: %v", err)
		}
		other.Process.Kill()
		other.Wait()
		if err := h.e.Heal(ctx, rs[0]); err != nil {
			t.Fatal(err)
		}
		if rs := drift(t); len(rs) != 0 {
			t.Fatalf("after heal: %+v", rs)
		}
		resp, err := http.Get("http://" + httpAddr + "/")
		if err != nil {
			t.Fatalf("the re-bound listener does not serve: %v", err)
		}
		resp.Body.Close()
		if err := h.e.Ready(); err != nil {
			t.Fatalf("not ready after the heal: %v", err)
		}
	})
}

func mtime(t *testing.T, p string) time.Time {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.ModTime()
}
