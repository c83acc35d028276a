package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrNoQuorum marks a call that failed because the etcd cluster cannot
// commit or serve a linearizable read: it has no leader, lost it during the
// call, or no member answered in time.
var ErrNoQuorum = errors.New("store: no quorum")

// RequireLeader returns a context whose calls etcd refuses at once with
// "no leader" while the member they reach has none. Without it a
// linearizable read waits on a member that lost its quorum, times out on
// the server and is retried by the client for minutes: an operator's
// command would hang with no message. Use it with a deadline: a call that
// reaches no member at all still waits for one.
func RequireLeader(ctx context.Context) context.Context {
	return clientv3.WithRequireLeader(ctx)
}

// Endpoints are the etcd endpoints this client uses.
func (s *Store) Endpoints() []string { return s.cli.Endpoints() }

// NoQuorum returns err wrapped in ErrNoQuorum, with what etcd said and the
// endpoints asked, when err comes from a cluster without a leader or from
// a call's deadline; any other error (or nil) is returned unchanged.
func (s *Store) NoQuorum(err error) error {
	if err == nil {
		return nil
	}
	return noQuorum(err, s.Endpoints())
}

func noQuorum(err error, endpoints []string) error {
	if err == nil || errors.Is(err, ErrNoQuorum) {
		return err
	}
	var why string
	switch {
	case errors.Is(err, rpctypes.ErrNoLeader):
		why = "etcd has no leader"
	case errors.Is(err, rpctypes.ErrLeaderChanged), errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail):
		why = "etcd lost its leader"
	case errors.Is(err, rpctypes.ErrTimeout), errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost):
		// The proposal or the read index was not confirmed by a majority
		// within etcd's own request timeout.
		why = "etcd timed out waiting for a majority"
	case errors.Is(err, context.DeadlineExceeded):
		why = "no etcd member with a leader answered in time"
	default:
		return err
	}
	return fmt.Errorf("%w: %s (endpoints %s): %w", ErrNoQuorum, why, hosts(endpoints), err)
}

// hosts lists endpoints without their scheme, as operators write them.
func hosts(endpoints []string) string {
	out := make([]string, len(endpoints))
	for i, e := range endpoints {
		_, host, ok := strings.Cut(e, "://")
		if !ok {
			host = e
		}
		out[i] = host
	}
	return strings.Join(out, ",")
}
