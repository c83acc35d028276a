package bgp

import (
	"time"

	"github.com/osrg/gobgp/v4/api"
)

// apiPeer renders a neighbor for GoBGP. A session carries the family of its
// neighbor address.
func apiPeer(n Neighbor) *api.Peer {
	retry := n.ConnectRetry
	if retry == 0 {
		retry = 5 * time.Second
	}
	fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if n.Address.Is6() && !n.Address.Is4In6() {
		fam = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	}
	af := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: fam, Enabled: true}}
	if n.MaxPrefix > 0 {
		af.PrefixLimits = &api.PrefixLimit{Family: fam, MaxPrefixes: n.MaxPrefix, ShutdownThresholdPct: 80}
	}
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: n.Address.String(),
			PeerAsn:         n.ASN,
			AuthPassword:    n.Password,
			Description:     n.Name,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			// Zero reaches GoBGP as zero: it fills RFC 4271's 90 s and
			// a third of the hold time, so no copy of them lives here.
			HoldTime:          orZero(n.HoldTime),
			KeepaliveInterval: orZero(n.Keepalive),
			ConnectRetry:      seconds(retry),
			// After a reset (a peer went away) try again soon.
			IdleHoldTimeAfterReset: seconds(retry),
		}},
		Transport: &api.Transport{PassiveMode: n.Passive},
		AfiSafis:  []*api.AfiSafi{af},
	}
	if n.LocalAddress.IsValid() {
		p.Transport.LocalAddress = n.LocalAddress.String()
	}
	if n.Port != 0 {
		p.Transport.RemotePort = uint32(n.Port)
	}
	return p
}

// orZero is seconds, except that zero stays zero: "unset" for GoBGP.
func orZero(d time.Duration) uint64 {
	if d == 0 {
		return 0
	}
	return seconds(d)
}

func seconds(d time.Duration) uint64 {
	s := uint64((d + time.Second - 1) / time.Second)
	if s == 0 {
		s = 1
	}
	return s
}
