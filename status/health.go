package status

import "time"

// EdgeHealthDistribution is the distribution name under which the
// controller stores its probes of edges ("_edge/<node>"); distribution
// names cannot start with '_', so it never collides with a real one.
const EdgeHealthDistribution = "_edge"

// OriginHealth is the controller's verdict on one origin of a distribution.
type OriginHealth struct {
	Distribution string    `json:"distribution"`
	Origin       string    `json:"origin"`
	Healthy      bool      `json:"healthy"`
	Reason       string    `json:"reason,omitempty"`
	Checked      time.Time `json:"checked"`
	Since        time.Time `json:"since"`
}
