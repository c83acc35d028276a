package status

import (
	"net/netip"
	"time"
)

// NetRTT is the round-trip time an edge measured towards a client
// network (the handshakes of its connections, smoothed).
type NetRTT struct {
	Network netip.Prefix  `json:"network"`
	RTT     time.Duration `json:"rtt"`
	Samples int64         `json:"samples"`
}

// OriginPaths is an edge's view of its candidate paths to one origin.
type OriginPaths struct {
	Distribution string     `json:"distribution"`
	Origin       string     `json:"origin"`
	Mode         string     `json:"mode"`
	Chosen       string     `json:"chosen,omitempty"`
	Paths        []PathInfo `json:"paths"`
}

// PathInfo is one candidate path's smoothed measurements.
type PathInfo struct {
	ID         string        `json:"id"`
	TTFB       time.Duration `json:"ttfb"`
	RTT        time.Duration `json:"rtt"` // of the first hop's connection
	Loss       float64       `json:"loss"`
	Throughput float64       `json:"throughput"`
}
