package agent

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/gateway"
	"github.com/intercloud/intercloud/role"
)

// The gateway lives in package gateway and is written to the new role
// contract (package role). This adapter fits it to today's agent until the
// agent speaks that contract itself: Apply is Prepare then Commit, and the
// node API goes through a sub-mux per instance, because the agent mounts
// each new instance on the same mux and a pattern registered twice panics.
func init() {
	roleFactories[config.RoleGateway] = func(o RoleOptions) (Role, error) {
		sub := http.NewServeMux()
		g, err := gateway.New(role.Options{Node: o.Node, Logger: o.Logger, Registry: o.Registry, Mux: sub,
			StateDir: o.StateDir, OwnProcess: o.OwnProcess})
		if err != nil {
			return nil, err
		}
		return &gatewayAdapter{Gateway: g, sub: sub}, nil
	}
}

type gatewayAdapter struct {
	*gateway.Gateway
	sub *http.ServeMux // this instance's routes
	mux *http.ServeMux // the agent's, once Routes ran
}

func (a *gatewayAdapter) Apply(ctx context.Context, snap *config.Snapshot) error {
	c, err := a.Prepare(ctx, snap)
	if err != nil {
		return err
	}
	c.Commit()
	return a.Ready()
}

func (a *gatewayAdapter) Close(ctx context.Context) error {
	if cur, ok := gatewayMounts.Load(a.mux); ok {
		cur.(*atomic.Pointer[http.ServeMux]).CompareAndSwap(a.sub, nil)
	}
	return a.Gateway.Close(ctx)
}

// gatewayMounts holds, per agent mux, the sub-mux of the gateway instance
// it currently serves.
var gatewayMounts sync.Map // *http.ServeMux → *atomic.Pointer[http.ServeMux]

func (a *gatewayAdapter) Routes(mux *http.ServeMux) {
	a.mux = mux
	v, loaded := gatewayMounts.LoadOrStore(mux, new(atomic.Pointer[http.ServeMux]))
	cur := v.(*atomic.Pointer[http.ServeMux])
	cur.Store(a.sub)
	if loaded {
		return
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub := cur.Load()
		if sub == nil {
			http.Error(w, "gateway role not running", http.StatusServiceUnavailable)
			return
		}
		sub.ServeHTTP(w, r)
	})
	mux.Handle("GET /v1/bgp/", h)
	mux.Handle("GET /v1/vpn", h)
}
