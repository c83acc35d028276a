package status

import (
	"time"

	"github.com/intercloud/intercloud/config"
)

// NodeStatus is what an agent reports about itself under its lease, and what
// roles learn about other nodes (DNS uses it to leave out dead edges).
type NodeStatus struct {
	Name     string        `json:"name"`
	Roles    []config.Role `json:"roles"`
	Revision int64         `json:"revision"`
	Hash     string        `json:"hash"`
	Healthy  bool          `json:"healthy"`
	Message  string        `json:"message,omitempty"`
	Since    time.Time     `json:"since"`
	// Started is when the node's process started: a rollout gate sees a
	// restart or a crash loop as a new value.
	Started time.Time `json:"started,omitzero"`
	Updated time.Time `json:"updated"`
	// Unavailable lists roles this build could not run.
	Unavailable []config.Role `json:"unavailable,omitempty"`
	// Report is what the node's roles publish about themselves.
	Report RoleReport `json:"report,omitzero"`
	// Drifted counts the owned resources whose real state differs from the
	// desired one at the last drift check; Drift lists them.
	Drifted int          `json:"drifted,omitempty"`
	Drift   *DriftReport `json:"drift,omitempty"`
}

// RoleReport is a small summary of a node's roles for status and the
// topology page; it is refreshed with the node's registration.
type RoleReport struct {
	// Edge: requests served and the share answered from cache.
	Requests int64   `json:"requests,omitempty"`
	HitRatio float64 `json:"hitRatio,omitempty"`
	// Edge, counted since the role started: responses with a 5xx status,
	// origin fetches and those that failed (no answer or a 5xx). Rollout
	// gates compare their rates before and after a change.
	Errors5xx     int64 `json:"errors5xx,omitempty"`
	OriginFetches int64 `json:"originFetches,omitempty"`
	OriginErrors  int64 `json:"originErrors,omitempty"`
	// Degraded says what of the role is impaired while it serves (an
	// edge's disk tier that takes no writes).
	Degraded string `json:"degraded,omitempty"`
	// DNS, counted since the role started: queries answered, and those
	// answered SERVFAIL.
	Queries  int64 `json:"queries,omitempty"`
	Servfail int64 `json:"servfail,omitempty"`
	// Gateway: BGP sessions and WireGuard tunnels.
	Sessions []PeerState   `json:"sessions,omitempty"`
	Tunnels  []TunnelState `json:"tunnels,omitempty"`
	Routes   int           `json:"routes,omitempty"` // routes installed in the kernel
	// Edge: RTT towards client networks (for the DNS latency policy) and
	// the measured paths to origins (status/paths.go).
	ClientRTT []NetRTT      `json:"clientRTT,omitempty"`
	Paths     []OriginPaths `json:"paths,omitempty"`
}

// PeerState is one BGP session.
type PeerState struct {
	Peer     string `json:"peer"`     // neighbor address
	Name     string `json:"name"`     // peer node or external neighbor name
	Link     string `json:"link"`     // link name, or "external"
	State    string `json:"state"`    // established, active, idle, ...
	Accepted int    `json:"accepted"` // prefixes accepted
}

// TunnelState is one WireGuard peer.
type TunnelState struct {
	Interface     string    `json:"interface"`
	Peer          string    `json:"peer"`
	Up            bool      `json:"up"`
	LastHandshake time.Time `json:"lastHandshake,omitzero"`
}
