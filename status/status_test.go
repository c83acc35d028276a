package status

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
)

// The store holds these records; their JSON is a wire format. A failure
// here means the change breaks nodes and controllers of other builds.
func TestWireFormat(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"node full", NodeStatus{
			Name: "n1", Roles: []config.Role{config.RoleEdge}, Revision: 7, Hash: "h", Healthy: true,
			Message: "m", Since: at, Updated: at, Unavailable: []config.Role{config.RoleGateway},
			Report: RoleReport{Requests: 3, HitRatio: 0.5, Routes: 2,
				Sessions: []PeerState{{Peer: "198.18.1.2", Name: "tokyo-gw", Link: "dx", State: "established", Accepted: 4}},
				Tunnels:  []TunnelState{{Interface: "wg0", Peer: "tokyo-gw", Up: true, LastHandshake: at}}},
		}, `{"name":"n1","roles":["edge"],"revision":7,"hash":"h","healthy":true,"message":"m",` +
			`"since":"2025-01-02T03:04:05Z","updated":"2025-01-02T03:04:05Z","unavailable":["gateway"],` +
			`"report":{"requests":3,"hitRatio":0.5,` +
			`"sessions":[{"peer":"198.18.1.2","name":"tokyo-gw","link":"dx","state":"established","accepted":4}],` +
			`"tunnels":[{"interface":"wg0","peer":"tokyo-gw","up":true,"lastHandshake":"2025-01-02T03:04:05Z"}],"routes":2}}`},
		{"node empty", NodeStatus{Name: "n1"},
			`{"name":"n1","roles":null,"revision":0,"hash":"","healthy":false,` +
				`"since":"0001-01-01T00:00:00Z","updated":"0001-01-01T00:00:00Z"}`},
		{"node drifted", NodeStatus{Name: "n1", Drifted: 1, Drift: &DriftReport{Checked: at, Resources: []DriftResource{
			{Kind: DriftRoute, ID: "10.2.0.0/16", Expected: "via 10.0.0.2", Actual: "absent", State: DriftSuspended, Message: "m", Since: at}}}},
			`{"name":"n1","roles":null,"revision":0,"hash":"","healthy":false,` +
				`"since":"0001-01-01T00:00:00Z","updated":"0001-01-01T00:00:00Z","drifted":1,` +
				`"drift":{"checked":"2025-01-02T03:04:05Z","resources":[{"kind":"route","id":"10.2.0.0/16",` +
				`"expected":"via 10.0.0.2","actual":"absent","state":"suspended","message":"m","since":"2025-01-02T03:04:05Z"}]}}`},
		{"drift event", DriftEvent{Time: at, Node: "n1", Kind: DriftFile, ID: "blue/a", Expected: "e", Actual: "absent", State: DriftHealed},
			`{"time":"2025-01-02T03:04:05Z","node":"n1","kind":"file","id":"blue/a","expected":"e","actual":"absent","state":"healed"}`},
		{"tunnel no handshake", TunnelState{Interface: "wg0", Peer: "p"},
			`{"interface":"wg0","peer":"p","up":false}`},
		{"origin health", OriginHealth{Distribution: "shop", Origin: "blue", Healthy: false, Reason: "r", Checked: at, Since: at},
			`{"distribution":"shop","origin":"blue","healthy":false,"reason":"r",` +
				`"checked":"2025-01-02T03:04:05Z","since":"2025-01-02T03:04:05Z"}`},
		{"invalidation", Invalidation{ID: "i1", Distribution: "shop", Paths: []string{"/a"}, Time: at},
			`{"id":"i1","distribution":"shop","paths":["/a"],"time":"2025-01-02T03:04:05Z"}`},
	}
	for _, c := range cases {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if string(b) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, b, c.want)
		}
	}
	if EdgeHealthDistribution != "_edge" {
		t.Errorf("EdgeHealthDistribution = %q, the store's keys say _edge", EdgeHealthDistribution)
	}
}
