package netns_test

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

	"github.com/intercloud/intercloud/test/netns"
	"github.com/intercloud/intercloud/test/testenv"
)

func TestMain(m *testing.M) { netns.Main(m) }

func init() {
	netns.RegisterHelper("echo-listen", func(args []string) int {
		ln, err := net.Listen("tcp", args[0])
		if err != nil {
			os.Stderr.WriteString(err.Error())
			return 1
		}
		os.Stdout.WriteString("listening\n")
		for {
			c, err := ln.Accept()
			if err != nil {
				return 1
			}
			c.Write([]byte("hello from helper\n"))
			c.Close()
		}
	})
}

func TestVethAddrPingDownUp(t *testing.T) {
	testenv.NeedTool(t, "ping", "iputils-ping")
	h := netns.New(t)
	a, b := h.Namespace("a"), h.Namespace("b")
	h.Veth(a, "eth0", b, "eth0")
	a.Addr("eth0", "10.99.0.1/24")
	b.Addr("eth0", "10.99.0.2/24")
	b.Addr("lo", "10.98.0.1/32")
	a.Route("10.98.0.0/24", "10.99.0.2", "")

	ctx := context.Background()
	if out, err := a.Run(ctx, "ping", "-c1", "-W2", "10.98.0.1"); err != nil {
		t.Fatalf("ping over veth: %v\n%s", err, out)
	}
	// The address must not exist in the host namespace.
	if out, _ := exec.Command("ip", "-o", "addr").CombinedOutput(); strings.Contains(string(out), "10.99.0.1") {
		t.Fatalf("namespace address leaked to the host:\n%s", out)
	}
	b.Down("eth0")
	if out, err := a.Run(ctx, "ping", "-c1", "-W1", "10.98.0.1"); err == nil {
		t.Fatalf("ping succeeded with the link down:\n%s", out)
	}
	b.Up("eth0")
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := a.Run(ctx, "ping", "-c1", "-W1", "10.98.0.1")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping after link up: %v\n%s", err, out)
		}
	}
}

func TestStartHelperAndDo(t *testing.T) {
	h := netns.New(t)
	a, b := h.Namespace("a"), h.Namespace("b")
	h.Veth(a, "v0", b, "v1")
	a.Addr("v0", "10.97.0.1/30")
	b.Addr("v1", "10.97.0.2/30")

	p := a.StartHelper("echo-listen", "10.97.0.1:7000")
	deadline := time.Now().Add(10 * time.Second)
	var got string
	for got == "" {
		err := b.Do(func() error {
			c, err := net.DialTimeout("tcp", "10.97.0.1:7000", time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			buf := make([]byte, 64)
			n, _ := c.Read(buf)
			got = string(buf[:n])
			return nil
		})
		if err != nil && time.Now().After(deadline) {
			t.Fatalf("dial helper in namespace a from b: %v\n%s", err, p.Output())
		}
		if err != nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got != "hello from helper\n" {
		t.Fatalf("got %q", got)
	}
	p.Stop()
	select {
	case <-p.Done():
	default:
		t.Fatal("helper still running after Stop")
	}
	// The host namespace must not see the namespace's address.
	if _, err := net.DialTimeout("tcp", "127.0.0.1:7000", 200*time.Millisecond); err == nil {
		t.Fatal("helper port reachable on host loopback")
	}
}

func TestCleanupKillsProcesses(t *testing.T) {
	var pid int
	var nsPath string
	t.Run("inner", func(t *testing.T) {
		h := netns.New(t)
		a := h.Namespace("a")
		nsPath = a.Path()
		pid = a.Start("sleep", "1000").Pid()
	})
	if err := syscall.Kill(pid, 0); err == nil {
		// The zombie is reaped by Stop; anything else is a leak.
		t.Fatalf("process %d survived the harness cleanup", pid)
	}
	if _, err := os.Stat(nsPath); err == nil {
		t.Fatalf("namespace holder %s survived the cleanup", nsPath)
	}
}

func TestSweepKillsOrphans(t *testing.T) {
	testenv.NeedRoot(t)
	// A process marked with an owner that is not running is an orphan of a
	// crashed run; one marked with a live owner is not.
	orphan := exec.Command("sleep", "1000")
	orphan.Env = []string{"INTERCLOUD_NETNS_OWNER=999999999.1:icdead-x"}
	live := exec.Command("sleep", "1000")
	st, _ := os.ReadFile("/proc/self/stat")
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
	live.Env = []string{"INTERCLOUD_NETNS_OWNER=" + itoa(os.Getpid()) + "." + f[19] + ":iclive-x"}
	for _, c := range []*exec.Cmd{orphan, live} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	}
	if _, err := netns.Sweep(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- orphan.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("orphan not killed by Sweep")
	}
	if err := live.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("live run's process was swept: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
