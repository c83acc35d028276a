// Package vpn runs a gateway's WireGuard tunnels: one interface per vpn link,
// named after the peer node (ic-<peer>), on wireguard-go in userspace over a
// real TUN device. The UAPI socket is served at the standard path, so the
// stock `wg` tool shows and configures our interfaces unchanged.
//
// A Manager turns the site's vpn links into tunnels (Apply), changes them in
// place through the UAPI protocol (AllowedIPs, endpoints, keys) without
// tearing them down, and watches every peer through the data plane: a peer
// whose keepalives stop arriving, or whose handshake is stale, is reported
// down at once so the gateway can drop the BGP session that runs over it.
package vpn
