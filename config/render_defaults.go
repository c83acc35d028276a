package config

import (
	"net"
	"net/netip"
	"slices"
	"time"
)

// Defaults. They are filled in one place, after decoding and before the
// semantic checks (so that the checks see what will really run, e.g. a node
// admin address colliding with the default controller address), and every
// role reads the filled snapshot instead of guessing its own.
const (
	// DefaultStoreDataDir keeps the embedded etcd beside the config.
	DefaultStoreDataDir = ".intercloud/store"
	// DefaultStoreListen and DefaultStorePeer are etcd's usual ports, on
	// loopback so a quickstart exposes nothing.
	DefaultStoreListen = "127.0.0.1:2379"
	DefaultStorePeer   = "127.0.0.1:2380"
	// DefaultLeaseTTL: a dead node disappears from DNS within ~10 s while
	// a GC pause or a slow store round trip does not flap it.
	DefaultLeaseTTL = Duration(10 * time.Second)
	// History: the last 100 revisions and a day of them, whichever is
	// more; enough to roll back past a bad afternoon.
	DefaultHistoryKeep    = 100
	DefaultHistoryKeepFor = Duration(24 * time.Hour)
	// DefaultControllerAdmin is where the CLI finds the controller.
	DefaultControllerAdmin = "127.0.0.1:9170"
	// DefaultDriftGrace leaves time for a rollout to reach every node
	// before status calls a node drifted.
	DefaultDriftGrace = Duration(30 * time.Second)
	// Edge probes by the controller.
	DefaultEdgeInterval = Duration(5 * time.Second)
	DefaultEdgeTimeout  = Duration(2 * time.Second)

	// DefaultDNSTTL is short so that failover and blue/green switches in
	// DNS take effect quickly; DefaultNegativeTTL is the SOA minimum.
	DefaultDNSTTL      = Duration(30 * time.Second)
	DefaultNegativeTTL = Duration(60 * time.Second)
	// DefaultMaxAnswers edges per answer: enough for client-side retry,
	// small enough for one UDP packet.
	DefaultMaxAnswers = 4

	// The edge's access log: buffered JSON lines on stderr, so that a
	// node shows its requests as it always did, without a write per
	// request; nginx's buffer=64k flush=1s.
	DefaultAccessLogPath   = "stderr"
	DefaultAccessLogFormat = "json"
	DefaultAccessLogBuffer = Size(64 << 10)
	DefaultAccessLogFlush  = Duration(time.Second)
	DefaultAccessLogSample = 1.0

	// Edge cache sizes.
	DefaultCacheMemory    = Size(256 << 20)
	DefaultCacheMaxObject = Size(64 << 20)
	// DefaultCacheSlice is what a range miss is filled in, as nginx's
	// slice module is usually set.
	DefaultCacheSlice = Size(1 << 20)

	// DefaultBGPPort is the BGP port (-1 in config turns listening off).
	DefaultBGPPort = 179
	// DefaultRouteProtocol marks our kernel routes (rtnetlink protocol
	// number; 200 is unassigned in /etc/iproute2/rt_protos).
	DefaultRouteProtocol = 200
	// DefaultHoldTime / keepalive (hold/3) detect a dead link in seconds
	// rather than BGP's 90 s default: the point of two links is failover.
	DefaultHoldTime = Duration(9 * time.Second)
	// WireGuard's usual port and an MTU that fits inside a 1500-byte path.
	DefaultWireguardPort = 51820
	DefaultWireguardMTU  = 1420
	// DefaultPersistentKeepalive keeps NAT mappings of vpn links open.
	DefaultPersistentKeepalive = Duration(25 * time.Second)

	// Origin client timeouts.
	DefaultConnectTimeout = Duration(5 * time.Second)
	DefaultReadTimeout    = Duration(30 * time.Second)
	// Origin health checks: 2 good probes to come back, 3 bad to go.
	DefaultHealthInterval  = Duration(5 * time.Second)
	DefaultHealthTimeout   = Duration(2 * time.Second)
	DefaultHealthHealthy   = 2
	DefaultHealthUnhealthy = 3

	// Distribution TTLs, CloudFront's: default 1 day, min 0, max 1 year.
	DefaultTTL    = Duration(24 * time.Hour)
	DefaultMinTTL = Duration(0)
	DefaultMaxTTL = Duration(365 * 24 * time.Hour)
	// DefaultErrorPageTTL: error responses are cached briefly so an origin
	// outage is not hammered, but recovery shows quickly.
	DefaultErrorPageTTL = Duration(10 * time.Second)
)

// Rollout defaults. A site whose store is embedded runs on one machine
// (`intercloud up`): a staged rollout has nothing to stage there, so it is
// immediate. A fleet gets canaries, a quarter, then everything, each
// baked for 30 s: long enough for a crash loop or an error rate to show.
const (
	DefaultRolloutBake         = Duration(30 * time.Second)
	DefaultRolloutApplyTimeout = Duration(60 * time.Second)
	// Gates: 1 % of responses or answers in error, 5 % of origin fetches
	// (origins fail more on their own), judged from 20 requests up.
	DefaultMax5xxPercent         = 1.0
	DefaultMaxOriginErrorPercent = 5.0
	DefaultMaxServfailPercent    = 1.0
	DefaultGateMinRequests       = 20
)

// MaxDistributionBytes is the largest a distribution (or the site) may be
// once encoded: the store keeps each in one etcd value, and etcd takes at
// most 1.5 MiB per request.
const MaxDistributionBytes = 1 << 20

// DefaultFleetStages is the rollout of a site with an external store.
var DefaultFleetStages = []RolloutStage{{Canary: true}, {Percent: 25}, {Percent: 100}}

// DefaultFailoverOn are the origin statuses that make a group try its next
// member: the gateway-ish errors, not 501 (a real answer).
var DefaultFailoverOn = []int{500, 502, 503, 504}

// DefaultMethods are the methods a behavior allows when it lists none:
// every standard method, because unsafe methods pass through to the origin
// (and invalidate what is stored for the URI, RFC 9111 §4.4); only GET and
// HEAD are ever answered from cache. List methods to restrict them
// (CloudFront's "GET, HEAD" is `methods: [GET, HEAD]`).
var DefaultMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// SetDefaults fills every optional field that is unset. It is idempotent,
// so a snapshot edited by promote can be filled again.
func (s *Snapshot) SetDefaults() {
	setSiteDefaults(&s.Site)
	for i := range s.Distributions {
		setDistributionDefaults(&s.Distributions[i])
	}
}

func dflt[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

func setSiteDefaults(s *Site) {
	dflt(&s.Store.DataDir, DefaultStoreDataDir)
	dflt(&s.Store.Listen, DefaultStoreListen)
	dflt(&s.Store.Peer, DefaultStorePeer)
	dflt(&s.Store.LeaseTTL, DefaultLeaseTTL)
	dflt(&s.Store.History.Keep, DefaultHistoryKeep)
	dflt(&s.Store.History.KeepFor, DefaultHistoryKeepFor)
	dflt(&s.Controller.Admin, DefaultControllerAdmin)
	dflt(&s.Controller.DriftGrace, DefaultDriftGrace)
	dflt(&s.Health.EdgeInterval, DefaultEdgeInterval)
	// A probe that outlives its interval overlaps the next one: whoever
	// shortened only the interval meant probes that fit in it.
	dflt(&s.Health.EdgeTimeout, min(DefaultEdgeTimeout, s.Health.EdgeInterval))
	setRolloutDefaults(s)
	setDriftDefaults(&s.Drift)
	dflt(&s.DNS.TTL, DefaultDNSTTL)
	dflt(&s.DNS.NegativeTTL, DefaultNegativeTTL)
	dflt(&s.DNS.MaxAnswers, DefaultMaxAnswers)
	if len(s.DNS.Nameservers) == 0 && s.DNS.Zone != "" {
		s.DNS.Nameservers = []string{"ns1." + s.DNS.Zone}
	}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if n.HasRole(RoleEdge) {
			dflt(&n.Cache.Memory, DefaultCacheMemory)
			dflt(&n.Cache.MaxObject, DefaultCacheMaxObject)
			if n.AccessLog == nil {
				n.AccessLog = &AccessLog{}
			}
			dflt(&n.AccessLog.Path, DefaultAccessLogPath)
			dflt(&n.AccessLog.Format, DefaultAccessLogFormat)
			dflt(&n.AccessLog.Buffer, DefaultAccessLogBuffer)
			dflt(&n.AccessLog.Flush, DefaultAccessLogFlush)
			dflt(&n.AccessLog.Sample, DefaultAccessLogSample)
			if n.Cache.Disk != nil {
				dflt(&n.Cache.Slice, DefaultCacheSlice)
			}
			// DNS hands out the edge's address; a specific listen
			// address is the natural one.
			if n.Address == "" {
				if host, _, err := net.SplitHostPort(n.Listen.HTTP); err == nil {
					if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
						n.Address = a.String()
					}
				}
			}
		}
		if g := n.Gateway; g != nil {
			dflt(&g.ListenPort, DefaultBGPPort)
			dflt(&g.Protocol, DefaultRouteProtocol)
			dflt(&g.HoldTime, DefaultHoldTime)
			if w := g.Wireguard; w != nil {
				dflt(&w.ListenPort, DefaultWireguardPort)
				dflt(&w.MTU, DefaultWireguardMTU)
			}
		}
	}
	for i := range s.Links {
		l := &s.Links[i]
		dflt(&l.HoldTime, linkHoldTime(s, l))
		dflt(&l.Keepalive, l.HoldTime/3)
		if l.Kind == LinkVPN {
			dflt(&l.PersistentKeepalive, DefaultPersistentKeepalive)
		}
	}
}

// linkHoldTime is the hold time of a link that does not set one. It follows
// what the user wrote: the ends' gateway.holdTime (BGP settles on the smaller
// of the two hold times offered, so that is what the session runs with), and
// at least three keepalives, so that a link given only `keepalive: 5s` is
// not refused for a hold time the user never wrote.
func linkHoldTime(s *Site, l *Link) Duration {
	hold := Duration(0)
	for _, end := range []string{l.A.Node, l.B.Node} {
		if n := s.Node(end); n != nil && n.Gateway != nil && n.Gateway.HoldTime > 0 {
			if hold == 0 || n.Gateway.HoldTime < hold {
				hold = n.Gateway.HoldTime
			}
		}
	}
	if hold == 0 {
		hold = DefaultHoldTime
	}
	return max(hold, 3*l.Keepalive)
}

func setDistributionDefaults(d *Distribution) {
	sp := &d.Spec
	setTTLDefaults(&sp.TTL)
	for k, o := range sp.Origins {
		dflt(&o.ConnectTimeout, DefaultConnectTimeout)
		dflt(&o.ReadTimeout, DefaultReadTimeout)
		if h := o.Health; h != nil {
			h2 := *h
			dflt(&h2.Interval, DefaultHealthInterval)
			// Validation refuses a timeout longer than the interval, so
			// the default must not be one: `interval: 1s` alone is valid.
			dflt(&h2.Timeout, min(DefaultHealthTimeout, h2.Interval))
			dflt(&h2.Healthy, DefaultHealthHealthy)
			dflt(&h2.Unhealthy, DefaultHealthUnhealthy)
			o.Health = &h2
		}
		sp.Origins[k] = o
	}
	for k, g := range sp.OriginGroups {
		if len(g.FailoverOn) == 0 {
			g.FailoverOn = append([]int(nil), DefaultFailoverOn...)
		}
		sp.OriginGroups[k] = g
	}
	for i := range sp.Behaviors {
		b := &sp.Behaviors[i]
		if len(b.Methods) == 0 {
			b.Methods = append([]string(nil), DefaultMethods...)
		}
		if b.Cache == nil {
			t := true
			b.Cache = &t
		}
		// A behavior's own TTL fields stay nil where unset: nil means
		// "inherit the distribution's", which the edge resolves.
	}
	setTiersDefaults(sp)
	for i := range sp.ErrorPages {
		e := &sp.ErrorPages[i]
		dflt(&e.TTL, DefaultErrorPageTTL)
		dflt(&e.ResponseCode, e.Status)
	}
}

func setTTLDefaults(t *TTL) {
	if t.Min == nil {
		v := DefaultMinTTL
		t.Min = &v
	}
	if t.Max == nil {
		v := max(DefaultMaxTTL, *t.Min)
		t.Max = &v
	}
	if t.Default == nil {
		// Clamped, so that setting only max: 1h stays valid.
		v := min(max(DefaultTTL, *t.Min), *t.Max)
		t.Default = &v
	}
}

func setRolloutDefaults(s *Site) {
	r := &s.Rollout
	if len(r.Stages) == 0 {
		if len(s.Store.Endpoints) == 0 {
			r.Stages = []RolloutStage{{Percent: 100}}
		} else {
			r.Stages = slices.Clone(DefaultFleetStages)
			dflt(&r.Bake, DefaultRolloutBake)
		}
	}
	dflt(&r.ApplyTimeout, DefaultRolloutApplyTimeout)
	dflt(&r.Gates.Max5xxPercent, DefaultMax5xxPercent)
	dflt(&r.Gates.MaxOriginErrorPercent, DefaultMaxOriginErrorPercent)
	dflt(&r.Gates.MaxServfailPercent, DefaultMaxServfailPercent)
	dflt(&r.Gates.MinRequests, DefaultGateMinRequests)
}
