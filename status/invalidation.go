package status

import "time"

// Invalidation removes paths of a distribution from every edge's cache.
type Invalidation struct {
	ID           string    `json:"id"`
	Distribution string    `json:"distribution"`
	Paths        []string  `json:"paths"`
	Time         time.Time `json:"time"`
}
