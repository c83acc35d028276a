package vpn

import (
	"net/netip"
	"time"
)

// Status is what /v1/vpn serves and `intercloud vpn show` prints.
type Status struct {
	Node       string            `json:"node"`
	Interfaces []InterfaceStatus `json:"interfaces"`
}

// InterfaceStatus is one tunnel interface, as `wg show` would list it.
type InterfaceStatus struct {
	Name       string       `json:"name"`
	Link       string       `json:"link"`
	PublicKey  string       `json:"publicKey"`
	ListenPort int          `json:"listenPort"`
	Address    netip.Prefix `json:"address"`
	MTU        int          `json:"mtu"`
	Peer       PeerState    `json:"peer"`
	// GSOFallbacks counts batched sends refused for their size and resent
	// one by one (a tunnel MTU above what the underlay carries).
	GSOFallbacks uint64 `json:"gsoFallbacks,omitempty"`
	// Error is set when the interface's state could not be read.
	Error string `json:"error,omitempty"`
}

// PeerState is one peer's health and counters. It is also what the
// Manager's OnPeerState callback receives on every change of Up.
type PeerState struct {
	Interface     string         `json:"interface"`
	Link          string         `json:"link"`
	Node          string         `json:"node"`
	PublicKey     string         `json:"publicKey"`
	Address       netip.Addr     `json:"address"` // the peer's tunnel address: its BGP neighbor address
	Endpoint      string         `json:"endpoint,omitempty"`
	AllowedIPs    []netip.Prefix `json:"allowedIPs"`
	Up            bool           `json:"up"`
	Reason        string         `json:"reason,omitempty"` // why it is down
	Since         time.Time      `json:"since"`            // when Up last changed
	LastHandshake time.Time      `json:"lastHandshake,omitzero"`
	LastReceive   time.Time      `json:"lastReceive,omitzero"`
	RxBytes       uint64         `json:"rxBytes"`
	TxBytes       uint64         `json:"txBytes"`
	Keepalive     Seconds        `json:"persistentKeepalive"`
}

// Seconds is a duration shown in whole seconds in JSON.
type Seconds int

// Up reports whether every peer is up (an empty status is up).
func (s Status) Up() bool {
	for _, i := range s.Interfaces {
		if !i.Peer.Up {
			return false
		}
	}
	return true
}
