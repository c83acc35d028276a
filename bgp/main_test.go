package bgp_test

import (
	"testing"

	"github.com/intercloud/intercloud/bgp/bgptest"
	"github.com/intercloud/intercloud/test/netns"
)

func TestMain(m *testing.M) {
	bgptest.Register()
	netns.Main(m)
}

// Short names for the helpers the tests use everywhere.
var (
	eventually = bgptest.Eventually
	contains   = bgptest.Contains
	lacks      = bgptest.Lacks
)

type gatewayConfig = bgptest.Config

func startGateway(t *testing.T, ns *netns.Namespace, cfg gatewayConfig) *bgptest.Gateway {
	return bgptest.Start(t, ns, cfg)
}
