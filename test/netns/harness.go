package netns

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/intercloud/intercloud/test/testenv"
)

// Harness owns the namespaces of one test. Everything it made is removed by
// t.Cleanup.
type Harness struct {
	t      testing.TB
	prefix string

	mu  sync.Mutex
	nss map[string]*Namespace
}

var sweepOnce sync.Once

// New checks the prerequisites (root, nsenter, sleep), sweeps what crashed
// earlier runs left behind, and returns an empty harness.
func New(t testing.TB) *Harness {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "nsenter", "util-linux")
	testenv.NeedTool(t, "sleep", "coreutils")
	sweepOnce.Do(func() {
		if n, err := Sweep(); err != nil {
			t.Logf("netns: sweeping stale namespaces: %v", err)
		} else if n > 0 {
			t.Logf("netns: swept %d stale processes of earlier runs", n)
		}
	})
	var b [3]byte
	_, _ = rand.Read(b[:])
	h := &Harness{
		t:      t,
		prefix: "ic" + hex.EncodeToString(b[:]),
		nss:    map[string]*Namespace{},
	}
	t.Cleanup(h.cleanup)
	return h
}

// Prefix is this harness's per-run tag. Interface names that must be unique
// per host (TUN devices: the WireGuard UAPI socket directory is shared by
// every namespace) should start with it; see Name.
func (h *Harness) Prefix() string { return h.prefix }

// Name returns a host-unique interface name built from the prefix and s,
// cut to the 15 bytes the kernel allows.
func (h *Harness) Name(s string) string {
	n := h.prefix + s
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

// Namespace returns the namespace called name, creating it on first use.
func (h *Harness) Namespace(name string) *Namespace {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if ns, ok := h.nss[name]; ok {
		return ns
	}
	ns, err := h.newNamespace(name)
	if err != nil {
		h.t.Fatalf("netns: namespace %s: %v", name, err)
	}
	h.nss[name] = ns
	return ns
}

func (h *Harness) newNamespace(name string) (*Namespace, error) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return nil, err
	}
	full := h.prefix + "-" + name
	cmd := &exec.Cmd{
		Path: sleep,
		// argv[0] names the namespace in ps; the environment marker is what
		// Sweep trusts.
		Args: []string{"intercloud-netns:" + full, "infinity"},
		Env:  []string{markerEnv + "=" + ownerMark() + ":" + full},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWNET,
			Pdeathsig:  syscall.SIGKILL,
			Setpgid:    true,
		},
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start holder: %w", err)
	}
	ns := &Namespace{h: h, name: name, full: full, holder: cmd}
	ns.path = fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	fail := func(err error) (*Namespace, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	nsh, err := vnetns.GetFromPath(ns.path)
	if err != nil {
		return fail(fmt.Errorf("open %s: %w", ns.path, err))
	}
	ns.nsh = nsh
	nl, err := netlink.NewHandleAt(nsh)
	if err != nil {
		nsh.Close()
		return fail(fmt.Errorf("netlink handle: %w", err))
	}
	ns.nl = nl
	// Loopback is down in a fresh namespace; daemons expect it up.
	if err := ns.setUp("lo", true); err != nil {
		ns.close()
		return nil, err
	}
	return ns, nil
}

func (h *Harness) cleanup() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ns := range h.nss {
		ns.close()
	}
	h.nss = map[string]*Namespace{}
}

// waitTimeout waits for cmd, killing its process group if it takes longer.
func waitTimeout(cmd *exec.Cmd, done <-chan struct{}, d time.Duration) {
	select {
	case <-done:
	case <-time.After(d):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}
