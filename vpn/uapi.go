package vpn

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The UAPI text protocol (https://www.wireguard.com/xplatform/) is how we
// configure wireguard-go, exactly as `wg` does. Keys in it are hex.

// uapiDevice is what a "get" returns, minus the secrets.
type uapiDevice struct {
	ListenPort int
	Peers      []uapiPeer
}

type uapiPeer struct {
	PublicKey     Key
	Endpoint      string
	LastHandshake time.Time // zero: never
	RxBytes       uint64
	TxBytes       uint64
	Keepalive     int
	AllowedIPs    []netip.Prefix
}

// parseUAPI reads the output of a UAPI get. Private and preshared keys are
// skipped, not kept: nothing parsed here may leak them into status or logs.
func parseUAPI(s string) (uapiDevice, error) {
	var d uapiDevice
	var p *uapiPeer
	var sec, nsec int64
	flush := func() {
		if p != nil && (sec != 0 || nsec != 0) {
			p.LastHandshake = time.Unix(sec, nsec)
		}
		sec, nsec = 0, 0
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if text == "" {
			break // the end of a response
		}
		key, val, ok := strings.Cut(text, "=")
		if !ok {
			return uapiDevice{}, fmt.Errorf("uapi line %d: no '='", line)
		}
		bad := func(err error) error {
			return fmt.Errorf("uapi line %d: %s: %w", line, key, err)
		}
		switch key {
		case "errno":
			if val != "0" {
				return uapiDevice{}, fmt.Errorf("uapi: errno=%s", val)
			}
		case "private_key", "preshared_key", "fwmark", "protocol_version":
		case "listen_port":
			n, err := strconv.ParseUint(val, 10, 16)
			if err != nil {
				return uapiDevice{}, bad(err)
			}
			d.ListenPort = int(n)
		case "public_key":
			flush()
			b, err := hex.DecodeString(val)
			if err != nil || len(b) != KeyLen {
				return uapiDevice{}, bad(fmt.Errorf("want %d hex bytes", KeyLen))
			}
			d.Peers = append(d.Peers, uapiPeer{})
			p = &d.Peers[len(d.Peers)-1]
			copy(p.PublicKey[:], b)
		default:
			if p == nil {
				return uapiDevice{}, fmt.Errorf("uapi line %d: %s before any peer", line, key)
			}
			var err error
			switch key {
			case "endpoint":
				p.Endpoint = val
			case "last_handshake_time_sec":
				sec, err = strconv.ParseInt(val, 10, 64)
			case "last_handshake_time_nsec":
				nsec, err = strconv.ParseInt(val, 10, 64)
			case "rx_bytes":
				p.RxBytes, err = strconv.ParseUint(val, 10, 64)
			case "tx_bytes":
				p.TxBytes, err = strconv.ParseUint(val, 10, 64)
			case "persistent_keepalive_interval":
				var n uint64
				n, err = strconv.ParseUint(val, 10, 16)
				p.Keepalive = int(n)
			case "allowed_ip":
				var pfx netip.Prefix
				pfx, err = netip.ParsePrefix(val)
				p.AllowedIPs = append(p.AllowedIPs, pfx)
			default:
				// Newer protocol keys are ignored, as `wg` does.
			}
			if err != nil {
				return uapiDevice{}, bad(err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return uapiDevice{}, fmt.Errorf("uapi: %w", err)
	}
	flush()
	return d, nil
}

// uapiWriter builds a UAPI set request.
type uapiWriter struct{ b strings.Builder }

func (w *uapiWriter) kv(k, v string) {
	w.b.WriteString(k)
	w.b.WriteByte('=')
	w.b.WriteString(v)
	w.b.WriteByte('\n')
}

func (w *uapiWriter) key(k string, key Key) { w.kv(k, key.hexString()) }

func (w *uapiWriter) String() string { return w.b.String() }

// peerBody writes the settings of a peer after its public_key line; without
// ips its AllowedIPs are emptied.
func (w *uapiWriter) peerBody(t *Tunnel, endpoint string, ips bool) {
	if endpoint != "" {
		w.kv("endpoint", endpoint)
	}
	w.kv("persistent_keepalive_interval", strconv.Itoa(int(t.Keepalive/time.Second)))
	w.kv("replace_allowed_ips", "true")
	if !ips {
		return
	}
	for _, p := range t.AllowedIPs {
		w.kv("allowed_ip", p.String())
	}
}
