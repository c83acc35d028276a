// Package storetest starts a real embedded etcd member for tests.
package storetest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/intercloud/intercloud/store"
)

// handedOut remembers every address FreeAddr returned in this process:
// the kernel may give a port it just freed to the next caller, and two
// addresses of one config must differ.
var handedOut sync.Map

// FreeAddr returns a loopback host:port that was free a moment ago and
// that no earlier call in this process returned.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if _, taken := handedOut.LoadOrStore(addr, true); !taken {
			return addr
		}
	}
}

// Member is a started member and how to restart it on the same data.
type Member struct {
	*store.Member
	Config store.MemberConfig
}

// Start starts a single-member etcd in a temporary directory; it is
// stopped when the test ends.
func Start(t testing.TB) *Member {
	t.Helper()
	mc := store.MemberConfig{DataDir: t.TempDir(), Client: FreeAddr(t), Peer: FreeAddr(t)}
	return StartConfig(t, mc)
}

// StartConfig starts (or restarts) a member with mc.
func StartConfig(t testing.TB, mc store.MemberConfig) *Member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, err := store.StartMember(ctx, mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return &Member{Member: m, Config: mc}
}

// Open opens a client on endpoints, closed when the test ends.
func Open(t testing.TB, endpoints []string) *store.Store {
	t.Helper()
	s, err := store.Open(endpoints)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Eventually polls cond until it holds or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
