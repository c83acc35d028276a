// Package config holds the schema of a site and its distributions, the YAML
// loader that reports every error with file:line:column, validation,
// parameters, the canonical hash and the diff between two snapshots.
package config

import (
	"net/netip"
	"time"
)

// APIVersion is the only apiVersion this build understands.
const APIVersion = "intercloud/v1"

// Role is a job a node does.
type Role string

const (
	RoleEdge    Role = "edge"
	RoleDNS     Role = "dns"
	RoleGateway Role = "gateway"
	RoleOrigin  Role = "origin"
)

// Roles lists every role this schema knows, in display order.
var Roles = []Role{RoleEdge, RoleDNS, RoleGateway, RoleOrigin}

// Site is the physical layout: clouds, nodes, links and the DNS zone.
type Site struct {
	Name       string         `yaml:"name" json:"name"`
	Store      Store          `yaml:"store" json:"store"`
	Controller Controller     `yaml:"controller" json:"controller"`
	DNS        DNS            `yaml:"dns" json:"dns"`
	Health     HealthDefaults `yaml:"health" json:"health"`
	Clouds     []Cloud        `yaml:"clouds" json:"clouds"`
	Nodes      []Node         `yaml:"nodes" json:"nodes"`
	Links      []Link         `yaml:"links" json:"links"`
	Rollout    Rollout        `yaml:"rollout" json:"rollout"`
	// Drift is how nodes check what their roles own (drift.go).
	Drift DriftPolicy `yaml:"drift" json:"drift"`
}

// Rollout is how every revision reaches the nodes: in stages, each gated
// on what its nodes report, rolled back everywhere when a gate fails.
type Rollout struct {
	// Stages in order; the last one reaches every node ({percent: 100}).
	Stages []RolloutStage `yaml:"stages" json:"stages,omitempty"`
	// Bake is how long a stage runs the revision, watched, before the
	// next stage starts.
	Bake Duration `yaml:"bake" json:"bake"`
	// ApplyTimeout is how long a stage's nodes have to report the
	// revision applied and ready.
	ApplyTimeout Duration `yaml:"applyTimeout" json:"applyTimeout"`
	// Canary picks the nodes of a {canary: true} stage, by name or by
	// cloud; when both are empty, the first node of each cloud.
	Canary CanaryNodes  `yaml:"canary" json:"canary"`
	Gates  RolloutGates `yaml:"gates" json:"gates"`
}

// RolloutStage says which nodes run the revision once it is reached: the
// canaries, a number of nodes, or a share of the fleet (earlier stages'
// nodes included; canaries first, then by cloud and name).
type RolloutStage struct {
	Canary  bool `yaml:"canary" json:"canary,omitempty"`
	Nodes   int  `yaml:"nodes" json:"nodes,omitempty"`
	Percent int  `yaml:"percent" json:"percent,omitempty"`
}

// CanaryNodes names the canary nodes of a rollout.
type CanaryNodes struct {
	Nodes  []string `yaml:"nodes" json:"nodes,omitempty"`
	Clouds []string `yaml:"clouds" json:"clouds,omitempty"`
}

// RolloutGates are the error rates a stage's nodes may show while it
// bakes, as percentages. A rate fails its gate when it is above its limit
// and above twice what the same nodes showed before the change.
type RolloutGates struct {
	// Edge responses with a 5xx status, of all responses.
	Max5xxPercent float64 `yaml:"max5xxPercent" json:"max5xxPercent"`
	// Origin fetches that failed (connection error, timeout, 5xx), of all
	// origin fetches.
	MaxOriginErrorPercent float64 `yaml:"maxOriginErrorPercent" json:"maxOriginErrorPercent"`
	// DNS answers with SERVFAIL, of all answers.
	MaxServfailPercent float64 `yaml:"maxServfailPercent" json:"maxServfailPercent"`
	// MinRequests below which a node's rates are too few to judge.
	MinRequests int64 `yaml:"minRequests" json:"minRequests"`
}

// Store says where the etcd keyspace lives. No endpoints means embedded.
type Store struct {
	Endpoints []string `yaml:"endpoints" json:"endpoints,omitempty"`
	Listen    string   `yaml:"listen" json:"listen,omitempty"`
	Peer      string   `yaml:"peer" json:"peer,omitempty"`
	DataDir   string   `yaml:"dataDir" json:"dataDir,omitempty"`
	// LeaseTTL is how long a node stays "live" after its agent stops
	// renewing its lease.
	LeaseTTL Duration `yaml:"leaseTTL" json:"leaseTTL,omitempty"`
	// History is how many revisions the store keeps for history and
	// rollback; older ones are removed and etcd compacted past them.
	History RevisionHistory `yaml:"history" json:"history"`
}

// RevisionHistory keeps the last Keep revisions and every revision younger
// than KeepFor.
type RevisionHistory struct {
	Keep    int      `yaml:"keep" json:"keep"`
	KeepFor Duration `yaml:"keepFor" json:"keepFor"`
}

// Controller is the controller's own settings.
type Controller struct {
	Admin string `yaml:"admin" json:"admin,omitempty"`
	// TokenFile holds the bearer token for mutating API calls
	// (default: <store dataDir>/../token, created on first start).
	TokenFile string `yaml:"tokenFile" json:"tokenFile,omitempty"`
	// DriftGrace is how long a node may run another hash than the desired
	// one before status calls it drifted.
	DriftGrace Duration `yaml:"driftGrace" json:"driftGrace,omitempty"`
}

// HealthDefaults tune the controller's probes of edges.
type HealthDefaults struct {
	EdgeInterval Duration `yaml:"edgeInterval" json:"edgeInterval,omitempty"`
	EdgeTimeout  Duration `yaml:"edgeTimeout" json:"edgeTimeout,omitempty"`
}

// DNS is the authoritative zone and how clients are located.
type DNS struct {
	Zone string   `yaml:"zone" json:"zone"`
	TTL  Duration `yaml:"ttl" json:"ttl,omitempty"`
	// NegativeTTL is the SOA minimum, used for NXDOMAIN/NODATA caching.
	NegativeTTL Duration `yaml:"negativeTTL" json:"negativeTTL,omitempty"`
	// GeoIP is a MaxMind .mmdb file or a tor-geoipdb style start,end,CC file
	// (several may be given separated by commas).
	GeoIP      string    `yaml:"geoip" json:"geoip,omitempty"`
	Networks   []Network `yaml:"networks" json:"networks,omitempty"`
	MaxAnswers int       `yaml:"maxAnswers" json:"maxAnswers,omitempty"`
	// Nameservers are the NS names of the zone; default ns1.<zone>.
	Nameservers []string `yaml:"nameservers" json:"nameservers,omitempty"`
	// RateLimit is response rate limiting (RRL) over UDP: at most this many
	// responses per second per client /24 (/56 for IPv6) and answer; 0 is off.
	RateLimit int `yaml:"rateLimit" json:"rateLimit,omitempty"`
}

// Network maps a client CIDR to a location; it wins over GeoIP.
type Network struct {
	CIDR     netip.Prefix `yaml:"cidr" json:"cidr"`
	Location Location     `yaml:"location" json:"location"`
}

// Location is where a node or a client is.
type Location struct {
	Country   string  `yaml:"country" json:"country,omitempty"`
	Continent string  `yaml:"continent" json:"continent,omitempty"`
	Lat       float64 `yaml:"lat" json:"lat"`
	Lon       float64 `yaml:"lon" json:"lon"`
}

// Cloud is one provider region with its own ASN and address space.
type Cloud struct {
	Name  string         `yaml:"name" json:"name"`
	ASN   uint32         `yaml:"asn" json:"asn"`
	CIDRs []netip.Prefix `yaml:"cidrs" json:"cidrs"`
}

// Node is one host running some roles.
type Node struct {
	Name     string   `yaml:"name" json:"name"`
	Cloud    string   `yaml:"cloud" json:"cloud"`
	Roles    []Role   `yaml:"roles" json:"roles"`
	Address  string   `yaml:"address" json:"address,omitempty"`
	Location Location `yaml:"location" json:"location"`
	Listen   Listen   `yaml:"listen" json:"listen"`
	Cache    Cache    `yaml:"cache" json:"cache"`
	// AccessLog is an edge's access log; rendering fills it for every
	// edge node (buffered JSON lines on stderr).
	AccessLog *AccessLog `yaml:"accessLog" json:"accessLog,omitempty"`
	// Weight steers DNS: 0 drains the edge; nil means 100.
	Weight  *int        `yaml:"weight" json:"weight,omitempty"`
	Gateway *Gateway    `yaml:"gateway" json:"gateway,omitempty"`
	Origin  *OriginRole `yaml:"origin" json:"origin,omitempty"`
}

// Listen holds a node's listening addresses, one per role.
type Listen struct {
	HTTP  string `yaml:"http" json:"http,omitempty"`
	HTTPS string `yaml:"https" json:"https,omitempty"`
	DNS   string `yaml:"dns" json:"dns,omitempty"`
	Admin string `yaml:"admin" json:"admin,omitempty"`
}

// Cache sizes an edge's cache.
type Cache struct {
	Memory Size `yaml:"memory" json:"memory,omitempty"`
	// MaxObject is the largest body kept in cache.
	MaxObject Size `yaml:"maxObject" json:"maxObject,omitempty"`
	// Disk, when set, adds a disk tier: objects of any size up to its
	// size, kept across restarts. Without it the cache is memory only.
	Disk *DiskCache `yaml:"disk" json:"disk,omitempty"`
	// Slice is the size of the pieces a range request for an object not
	// yet cached is filled in (nginx's slice module); with a disk tier only.
	Slice Size `yaml:"slice" json:"slice,omitempty"`
}

// DiskCache is an edge's disk tier: a directory it owns, and its limit.
type DiskCache struct {
	Path string `yaml:"path" json:"path"`
	Size Size   `yaml:"size" json:"size"`
}

// AccessLog is a buffered access log, nginx's `access_log path
// buffer=64k flush=1s`.
type AccessLog struct {
	// Path is a file (appended to, reopened on SIGHUP), "stderr",
	// "stdout", or "off".
	Path string `yaml:"path" json:"path"`
	// Format is "json" or "combined" (nginx's).
	Format string `yaml:"format" json:"format,omitempty"`
	// Buffer is the size of one buffer; a full one is written at once.
	Buffer Size `yaml:"buffer" json:"buffer,omitempty"`
	// Flush is the longest a line waits in the buffer.
	Flush Duration `yaml:"flush" json:"flush,omitempty"`
	// Sample is the share of requests logged, in (0, 1]; unset is 1.
	Sample float64 `yaml:"sample" json:"sample,omitempty"`
}

// AccessLogOff is the AccessLog path that turns it off.
const AccessLogOff = "off"

// OriginRole configures a node that runs the origin server.
type OriginRole struct {
	Root       string      `yaml:"root" json:"root"`
	Listen     string      `yaml:"listen" json:"listen"`
	TokenFile  string      `yaml:"tokenFile" json:"tokenFile,omitempty"`
	CacheRules []CacheRule `yaml:"cacheRules" json:"cacheRules,omitempty"`
}

// CacheRule sets Cache-Control for paths matching a glob.
type CacheRule struct {
	Path         string `yaml:"path" json:"path"`
	CacheControl string `yaml:"cacheControl" json:"cacheControl"`
}

// Gateway configures a node that peers with other clouds.
type Gateway struct {
	RouterID   netip.Addr `yaml:"routerId" json:"routerId"`
	ListenPort int        `yaml:"bgpPort" json:"bgpPort,omitempty"`
	// Table is the kernel routing table learned routes go to (0: main).
	Table int `yaml:"table" json:"table,omitempty"`
	// Protocol is the kernel route protocol number marking our routes.
	Protocol int `yaml:"protocol" json:"protocol,omitempty"`
	// GracefulRestart keeps installed routes when the gateway stops.
	GracefulRestart bool `yaml:"gracefulRestart" json:"gracefulRestart,omitempty"`
	// HoldTime is the BGP hold time with external neighbors, and of links
	// that do not set their own (the smaller of their two ends').
	HoldTime  Duration           `yaml:"holdTime" json:"holdTime,omitempty"`
	Wireguard *Wireguard         `yaml:"wireguard" json:"wireguard,omitempty"`
	Neighbors []ExternalNeighbor `yaml:"neighbors" json:"neighbors,omitempty"`
}

// Wireguard is the gateway's WireGuard identity.
type Wireguard struct {
	PrivateKeyFile string `yaml:"privateKeyFile" json:"privateKeyFile"`
	ListenPort     int    `yaml:"listenPort" json:"listenPort,omitempty"`
	MTU            int    `yaml:"mtu" json:"mtu,omitempty"`
}

// ExternalNeighbor is a BGP peer outside the site (an on-premises router).
type ExternalNeighbor struct {
	Name      string         `yaml:"name" json:"name"`
	Address   netip.Addr     `yaml:"address" json:"address"`
	ASN       uint32         `yaml:"asn" json:"asn"`
	Prefixes  []netip.Prefix `yaml:"prefixes" json:"prefixes"`
	MaxPrefix uint32         `yaml:"maxPrefix" json:"maxPrefix,omitempty"`
	Password  string         `yaml:"password" json:"password,omitempty"`
}

// LinkKind is how two gateways reach each other.
type LinkKind string

const (
	LinkDedicated LinkKind = "dedicated"
	LinkVPN       LinkKind = "vpn"
)

// Link joins two gateway nodes.
type Link struct {
	Name string   `yaml:"name" json:"name"`
	Kind LinkKind `yaml:"kind" json:"kind"`
	A    LinkEnd  `yaml:"a" json:"a"`
	B    LinkEnd  `yaml:"b" json:"b"`
	// Password enables TCP MD5 on the BGP session.
	Password  string   `yaml:"password" json:"password,omitempty"`
	HoldTime  Duration `yaml:"holdTime" json:"holdTime,omitempty"`
	Keepalive Duration `yaml:"keepalive" json:"keepalive,omitempty"`
	MaxPrefix uint32   `yaml:"maxPrefix" json:"maxPrefix,omitempty"`
	MTU       int      `yaml:"mtu" json:"mtu,omitempty"`
	// PersistentKeepalive for WireGuard peers of a vpn link.
	PersistentKeepalive Duration `yaml:"persistentKeepalive" json:"persistentKeepalive,omitempty"`
}

// Ends returns node's side of the link and the other side; ok is false
// when node is on neither.
func (l *Link) Ends(node string) (me, peer LinkEnd, ok bool) {
	switch node {
	case l.A.Node:
		return l.A, l.B, true
	case l.B.Node:
		return l.B, l.A, true
	}
	return LinkEnd{}, LinkEnd{}, false
}

// LinkEnd is one side of a link.
type LinkEnd struct {
	Node string `yaml:"node" json:"node"`
	// Address is this side's address on a dedicated link (the BGP
	// neighbor address seen from the other side).
	Address netip.Addr `yaml:"address" json:"address,omitempty"`
	// Endpoint is this side's public UDP endpoint (host:port) for a vpn link.
	Endpoint string `yaml:"endpoint" json:"endpoint,omitempty"`
	// Tunnel is this side's tunnel address with its prefix length.
	Tunnel    netip.Prefix `yaml:"tunnel" json:"tunnel,omitempty"`
	PublicKey string       `yaml:"publicKey" json:"publicKey,omitempty"`
}

// Parameter is a value a distribution can refer to as ${name}.
type Parameter struct {
	Default     string `yaml:"default" json:"default,omitempty"`
	Description string `yaml:"description" json:"description,omitempty"`
}

// Distribution is the logical unit for one hostname.
type Distribution struct {
	Name       string               `yaml:"name" json:"name"`
	Parameters map[string]Parameter `yaml:"parameters" json:"parameters,omitempty"`
	Spec       Spec                 `yaml:"spec" json:"spec"`
	Outputs    map[string]string    `yaml:"outputs" json:"outputs,omitempty"`
	// Imports keeps, for every field whose declared value imports another
	// stack's output, that declared text by field path
	// ("spec.origins.web.url": "${stack.shared.outputs.originUrl}"), so
	// that plan can follow outputs to their importers and export can write
	// the reference back. Rendering fills it; it is not written by users.
	Imports map[string]string `json:"imports,omitempty"`
}

// Spec is what a distribution serves and how.
type Spec struct {
	Aliases      []string               `yaml:"aliases" json:"aliases,omitempty"`
	TTL          TTL                    `yaml:"ttl" json:"ttl"`
	Origins      map[string]Origin      `yaml:"origins" json:"origins"`
	OriginGroups map[string]OriginGroup `yaml:"originGroups" json:"originGroups,omitempty"`
	Behaviors    []Behavior             `yaml:"behaviors" json:"behaviors"`
	ErrorPages   []ErrorPage            `yaml:"errorPages" json:"errorPages,omitempty"`
	Headers      Headers                `yaml:"headers" json:"headers"`
	TLS          TLS                    `yaml:"tls" json:"tls"`
	// Edges pins the distribution to these edge nodes in DNS (empty: all).
	Edges []string `yaml:"edges" json:"edges,omitempty"`
	// Enabled false keeps the distribution in config but serves nothing.
	Disabled bool `yaml:"disabled" json:"disabled,omitempty"`
	// Tiers sends misses through parent edges and shares objects among
	// the edges of a cloud (tiers.go).
	Tiers *Tiers `yaml:"tiers" json:"tiers,omitempty"`
	// Paths tunes how edges measure and choose the path of a miss.
	Paths *PathPolicy `yaml:"paths" json:"paths,omitempty"`
	// DNS is the distribution's answer policy (geo by default).
	DNS *DistributionDNS `yaml:"dns" json:"dns,omitempty"`
}

// TTL bounds and defaults freshness, CloudFront style.
type TTL struct {
	// Default replaces the heuristic when the origin gives no freshness.
	Default *Duration `yaml:"default" json:"default,omitempty"`
	Min     *Duration `yaml:"min" json:"min,omitempty"`
	Max     *Duration `yaml:"max" json:"max,omitempty"`
	// StaleWhileRevalidate / StaleIfError apply when the origin does not say.
	StaleWhileRevalidate *Duration `yaml:"staleWhileRevalidate" json:"staleWhileRevalidate,omitempty"`
	StaleIfError         *Duration `yaml:"staleIfError" json:"staleIfError,omitempty"`
}

// Origin is one upstream server.
type Origin struct {
	URL            string   `yaml:"url" json:"url"`
	Health         *Health  `yaml:"health" json:"health,omitempty"`
	ConnectTimeout Duration `yaml:"connectTimeout" json:"connectTimeout,omitempty"`
	ReadTimeout    Duration `yaml:"readTimeout" json:"readTimeout,omitempty"`
	// HostHeader overrides the Host sent to the origin (default: the URL's).
	HostHeader string `yaml:"hostHeader" json:"hostHeader,omitempty"`
}

// Health is an active HTTP health check of an origin.
type Health struct {
	Path      string   `yaml:"path" json:"path"`
	Interval  Duration `yaml:"interval" json:"interval,omitempty"`
	Timeout   Duration `yaml:"timeout" json:"timeout,omitempty"`
	Healthy   int      `yaml:"healthy" json:"healthy,omitempty"`
	Unhealthy int      `yaml:"unhealthy" json:"unhealthy,omitempty"`
}

// OriginGroup fails over between origins; Active serves.
type OriginGroup struct {
	Members    []string `yaml:"members" json:"members"`
	Active     string   `yaml:"active" json:"active"`
	FailoverOn []int    `yaml:"failoverOn" json:"failoverOn,omitempty"`
	// Canary sends Weight percent of clients (by client address hash) to
	// Member instead of Active.
	Canary *Canary `yaml:"canary" json:"canary,omitempty"`
	// KeepCache lets edges serve what other members of the group produced
	// until its TTL ends, to clients now routed to Active. Without it an
	// edge fetches such an object again, in full, at once. `intercloud
	// promote --keep-cache` sets it; a promote without the flag and an
	// auto-heal that moves Active clear it, so it describes the group's
	// last switch.
	KeepCache bool `yaml:"keepCache" json:"keepCache,omitempty"`
}

// Canary is a partial switch to another member.
type Canary struct {
	Member string `yaml:"member" json:"member"`
	Weight int    `yaml:"weight" json:"weight"`
}

// Behavior maps a path pattern to a target and its cache policy.
type Behavior struct {
	Path   string `yaml:"path" json:"path"`
	Target string `yaml:"target" json:"target"`
	// Cache false passes every request through.
	Cache   *bool   `yaml:"cache" json:"cache,omitempty"`
	TTL     TTL     `yaml:"ttl" json:"ttl"`
	Forward Forward `yaml:"forward" json:"forward"`
	// Methods allowed (default GET, HEAD); others get 405.
	Methods []string `yaml:"methods" json:"methods,omitempty"`
	// CacheSetCookie lets responses with Set-Cookie be shared.
	CacheSetCookie bool `yaml:"cacheSetCookie" json:"cacheSetCookie,omitempty"`
	// Compress gzips compressible responses for clients that accept it.
	Compress bool `yaml:"compress" json:"compress,omitempty"`
	// RedirectHTTPS answers plain-HTTP requests with a 301 to https.
	RedirectHTTPS bool `yaml:"redirectHTTPS" json:"redirectHTTPS,omitempty"`
	// Tiers replaces the distribution's tiers for this behavior.
	Tiers *Tiers `yaml:"tiers" json:"tiers,omitempty"`
}

// Forward says which parts of the request reach the origin (and the cache key).
type Forward struct {
	// Cookies: "none" (default), "all" or a list of names after "whitelist".
	Cookies Selection `yaml:"cookies" json:"cookies"`
	Query   Selection `yaml:"query" json:"query"`
	Headers []string  `yaml:"headers" json:"headers,omitempty"`
}

// Selection is none, all, or a list of names.
type Selection struct {
	All   bool     `json:"all,omitempty"`
	Names []string `json:"names,omitempty"`
}

// ErrorPage replaces an error status with a page from the distribution.
type ErrorPage struct {
	Status       int      `yaml:"status" json:"status"`
	Path         string   `yaml:"path" json:"path"`
	ResponseCode int      `yaml:"responseCode" json:"responseCode,omitempty"`
	TTL          Duration `yaml:"ttl" json:"ttl,omitempty"`
}

// Headers edits request and response headers.
type Headers struct {
	Request  HeaderEdit `yaml:"request" json:"request"`
	Response HeaderEdit `yaml:"response" json:"response"`
}

// HeaderEdit removes, sets (replacing) and adds (appending) headers, in
// that order.
type HeaderEdit struct {
	Set    map[string]string `yaml:"set" json:"set,omitempty"`
	Add    map[string]string `yaml:"add" json:"add,omitempty"`
	Remove []string          `yaml:"remove" json:"remove,omitempty"`
}

// TLS terminates HTTPS for the distribution.
type TLS struct {
	CertFile string `yaml:"certFile" json:"certFile,omitempty"`
	KeyFile  string `yaml:"keyFile" json:"keyFile,omitempty"`
}

// Duration is a time.Duration written as a Go duration string.
type Duration time.Duration

// D is the plain time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written as 64MiB, 1GB, 512k or a plain number.
type Size int64
