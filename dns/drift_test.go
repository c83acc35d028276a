package dns

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/test/testenv"
)

// The server's sockets broken from the outside: the TCP listener closed
// (ss -K where the kernel supports it) and its port taken by another
// process, a stranger joining the UDP SO_REUSEPORT group, one of our UDP
// sockets gone. Drift names each; Heal puts ours back and refuses to
// fight the stranger.
func TestDriftListeners(t *testing.T) {
	testenv.NeedRoot(t) // ss -K needs CAP_NET_ADMIN
	ss := testenv.NeedTool(t, "ss", "iproute2")
	iperf := testenv.NeedTool(t, "iperf3", "iperf3")
	addr := storetest.FreeAddr(t)
	s, _ := startServer(t, testSnapshot(""), func(o *Options) { o.Addr = addr; o.UDPSockets = 2 })
	ctx := context.Background()
	drift := func(t *testing.T) []status.DriftResource {
		t.Helper()
		rs, err := s.Drift(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	answers := func(t *testing.T, proto string) {
		t.Helper()
		if r := exchange(t, addr, proto, qA("shop."+zone)); len(r.Answer) == 0 {
			t.Fatalf("%s: no answer", proto)
		}
	}
	if rs := drift(t); len(rs) != 0 {
		t.Fatalf("fresh server drifted: %+v", rs)
	}

	t.Run("tcp", func(t *testing.T) {
		if out, err := exec.Command(ss, "-K", "state", "listening", "src", addr).CombinedOutput(); err != nil {
			t.Fatalf("ss -K: %v\n%s", err, out)
		}
		if rs := drift(t); len(rs) == 0 {
			t.Log("ss -K had no effect (kernel without CONFIG_INET_DIAG_DESTROY): closing the socket instead")
			s.mu.Lock()
			s.ln.tcp.Close()
			s.mu.Unlock()
		}
		rs := drift(t)
		if len(rs) != 1 || rs[0].ID != "dns tcp "+addr || rs[0].Actual != "not bound" {
			t.Fatalf("tcp listener closed: %+v", rs)
		}
		host, port, _ := net.SplitHostPort(addr)
		other := exec.Command(iperf, "-s", "-B", host, "-p", port)
		other.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := other.Start(); err != nil {
			t.Fatal(err)
		}
		defer other.Process.Kill()
		want := "held by pid " + strconv.Itoa(other.Process.Pid) + " (iperf3)"
		storetest.Eventually(t, 10*time.Second, "iperf3 on the port", func() bool {
			rs = drift(t)
			return len(rs) == 1 && strings.HasPrefix(rs[0].Actual, want)
		})
		if err := s.Heal(ctx, rs[0]); err == nil || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("heal while iperf3 holds the port: %v", err)
		}
		other.Process.Kill()
		other.Wait()
		if err := s.Heal(ctx, rs[0]); err != nil {
			t.Fatal(err)
		}
		if rs := drift(t); len(rs) != 0 {
			t.Fatalf("after heal: %+v", rs)
		}
		answers(t, "tcp")
	})

	t.Run("udp stranger", func(t *testing.T) {
		pc, err := (&net.ListenConfig{Control: reusePort}).ListenPacket(ctx, "udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		rs := drift(t)
		if len(rs) != 1 || rs[0].ID != "dns udp "+addr || !strings.HasPrefix(rs[0].Actual, "shared with pid "+strconv.Itoa(os.Getpid())) {
			t.Fatalf("a stranger in the group: %+v", rs)
		}
		if err := s.Heal(ctx, rs[0]); err == nil || !strings.Contains(err.Error(), "stop that process") {
			t.Fatalf("heal with a stranger: %v", err)
		}
		pc.Close()
		if rs := drift(t); len(rs) != 0 {
			t.Fatalf("stranger gone: %+v", rs)
		}
	})

	t.Run("udp socket gone", func(t *testing.T) {
		s.mu.Lock()
		s.ln.udp[0].Close()
		s.mu.Unlock()
		rs := drift(t)
		if len(rs) != 1 || rs[0].Actual != "1 of this node's 2 sockets closed" {
			t.Fatalf("one socket closed: %+v", rs)
		}
		if err := s.Heal(ctx, rs[0]); err != nil {
			t.Fatal(err)
		}
		if rs := drift(t); len(rs) != 0 {
			t.Fatalf("after heal: %+v", rs)
		}
		for range 8 { // both sockets of the group answer
			answers(t, "udp")
		}
	})
}
