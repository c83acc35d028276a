package status

import (
	"time"

	"github.com/intercloud/intercloud/config"
)

// Drift kinds: what a node's roles own and check against desired state,
// as DriftResource.Kind carries them. config.DriftKinds is the list (the
// site's drift policy names them); these are its values as strings.
const (
	DriftRoute       = string(config.DriftRoute)
	DriftWireguard   = string(config.DriftWireguard)
	DriftBGP         = string(config.DriftBGP)
	DriftListener    = string(config.DriftListener)
	DriftCertificate = string(config.DriftCertificate)
	DriftFile        = string(config.DriftFile)
)

// Drift states: what the node does about a resource that drifted.
const (
	DriftReported  = "reported" // the policy only reports this kind
	DriftHealed    = "healed"   // put back by this check
	DriftHealError = "heal-failed"
	// DriftSuspended: healed too often within the window; another tool
	// is changing it back, so the node leaves it alone and says so.
	DriftSuspended = "suspended"
)

// DriftResource is one owned resource whose real state differs from the
// desired one. Expected and Actual are short human-readable values
// ("absent", "10.2.0.0/16 via 10.0.0.2", "size 12 mtime …").
type DriftResource struct {
	Kind     string `json:"kind"`
	ID       string `json:"id"`
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
	// State and Message are set by the agent: what the policy did.
	State   string    `json:"state,omitempty"`
	Message string    `json:"message,omitempty"`
	Since   time.Time `json:"since,omitzero"` // first seen drifted, this episode
}

// Key identifies the resource across checks.
func (r DriftResource) Key() string { return r.Kind + " " + r.ID }

// DriftReport is the last drift check of a node, in its status.
type DriftReport struct {
	Checked   time.Time       `json:"checked,omitzero"`
	Resources []DriftResource `json:"resources,omitempty"`
	// More counts the resources left out of Resources: a node's status
	// carries the first ones only (its admin API has them all).
	More int `json:"more,omitempty"`
	// Error is what a check could not read (a role that failed to look).
	Error string `json:"error,omitempty"`
}

// Unresolved counts the resources of the report still drifted: every one
// but those this check healed. It is NodeStatus.Drifted and what the
// controller and the CLI show per node.
func (r *DriftReport) Unresolved() int {
	n := 0
	if r != nil {
		for _, x := range r.Resources {
			if x.State != DriftHealed {
				n++
			}
		}
	}
	return n
}

// DriftEvent records one heal (or a heal suspended) for the event log.
type DriftEvent struct {
	Time     time.Time `json:"time"`
	Node     string    `json:"node"`
	Kind     string    `json:"kind"`
	ID       string    `json:"id"`
	Expected string    `json:"expected"`
	Actual   string    `json:"actual"` // what was found before the heal
	State    string    `json:"state"`  // healed, heal-failed, suspended
	Message  string    `json:"message,omitempty"`
}
