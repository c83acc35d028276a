package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func TestNoQuorum(t *testing.T) {
	eps := []string{"http://127.0.0.1:2379", "127.0.0.1:2380"}
	other := errors.New("store: revision 9 does not exist")
	cases := []struct {
		name string
		err  error
		want string // "" : returned unchanged
	}{
		{"nil", nil, ""},
		{"unrelated", other, ""},
		{"conflict", ErrConflict, ""},
		{"caller gave up", context.Canceled, ""},
		{"no leader", fmt.Errorf("store: read current revision: %w", rpctypes.ErrNoLeader),
			"store: no quorum: etcd has no leader (endpoints 127.0.0.1:2379,127.0.0.1:2380): store: read current revision: etcdserver: no leader"},
		{"leader changed", rpctypes.ErrLeaderChanged, "etcd lost its leader"},
		{"leader failed", rpctypes.ErrTimeoutDueToLeaderFail, "etcd lost its leader"},
		{"server timeout", rpctypes.ErrTimeout, "etcd timed out waiting for a majority"},
		{"deadline", fmt.Errorf("store: commit revision 2: %w", context.DeadlineExceeded), "no etcd member with a leader answered in time"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := noQuorum(c.err, eps)
			if c.want == "" {
				if got != c.err {
					t.Fatalf("changed: %v", got)
				}
				return
			}
			if !errors.Is(got, ErrNoQuorum) || !errors.Is(got, c.err) || !strings.Contains(got.Error(), c.want) {
				t.Fatalf("got %q, want ErrNoQuorum wrapping %v and saying %q", got, c.err, c.want)
			}
			if again := noQuorum(got, eps); again != got {
				t.Fatalf("wrapped twice: %v", again)
			}
		})
	}
}

// startCluster starts a three-member cluster of embedded members.
func startCluster(t *testing.T) []*Member {
	t.Helper()
	type addr struct{ client, peer string }
	addrs := []addr{{freeAddr(t), freeAddr(t)}, {freeAddr(t), freeAddr(t)}, {freeAddr(t), freeAddr(t)}}
	var initial []string
	for i, a := range addrs {
		initial = append(initial, fmt.Sprintf("m%d=http://%s", i, a.peer))
	}
	members := make([]*Member, 3)
	errs := make(chan error, 3)
	for i, a := range addrs {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			m, err := StartMember(ctx, MemberConfig{Name: fmt.Sprintf("m%d", i), DataDir: t.TempDir(),
				Client: a.client, Peer: a.peer, InitialCluster: strings.Join(initial, ",")})
			members[i] = m
			errs <- err
		}()
	}
	for range addrs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range members {
		t.Cleanup(m.Close)
	}
	return members
}

// With two of three members gone, calls made under RequireLeader end with
// etcd's own verdict, not with the caller's deadline.
func TestLostQuorumIsReported(t *testing.T) {
	members := startCluster(t)
	var endpoints []string
	for _, m := range members {
		endpoints = append(endpoints, m.Endpoints()...)
	}
	s := openStore(t, endpoints)
	if err := s.Commit(context.Background(), snapshot(1, "a"), 0); err != nil {
		t.Fatal(err)
	}
	members[0].Close()
	members[1].Close()

	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"read", func(ctx context.Context) error { _, _, err := s.Pointer(ctx); return err }},
		{"commit", func(ctx context.Context) error { return s.Commit(ctx, snapshot(2, "a", "b"), 0) }},
		{"nodes page", func(ctx context.Context) error { _, _, err := s.NodesPage(ctx, "", 10); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			// The deadline only keeps a broken test from hanging: etcd must
			// answer before it.
			ctx, cancel := context.WithTimeout(RequireLeader(context.Background()), time.Minute)
			defer cancel()
			err := s.NoQuorum(c.call(ctx))
			if !errors.Is(err, ErrNoQuorum) || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("want etcd's no-quorum answer, got %v", err)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), strings.TrimPrefix(endpoints[2], "http://")) {
				t.Fatalf("endpoints not named: %v", err)
			}
		})
	}
}
