package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/intercloud/intercloud/vpn"
)

func init() {
	register(command{name: "vpn", summary: "show a gateway's WireGuard tunnels: vpn show", run: runVPN})
}

func runVPN(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("vpn", flag.ContinueOnError)
	node, jsonOut := nodeFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: intercloud vpn show [--node URL] [-j]")
		fs.PrintDefaults()
	}
	what, err := parseVerb(fs, args)
	if err != nil {
		return err
	}
	if what != "show" && what != "" {
		fs.Usage()
		return errUsage
	}
	var st vpn.Status
	if err := getNodeJSON(ctx, nodeURL(*node)+"/v1/vpn", &st); err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(st)
	}
	printVPN(os.Stdout, st, time.Now())
	return nil
}

// printVPN prints the tunnels the way `wg show` does, plus what wg cannot
// know: the link, the peer node and our verdict on its path.
func printVPN(w io.Writer, st vpn.Status, now time.Time) {
	if len(st.Interfaces) == 0 {
		fmt.Fprintf(w, "no tunnels on %s\n", st.Node)
		return
	}
	for i, in := range st.Interfaces {
		if i > 0 {
			fmt.Fprintln(w)
		}
		p := in.Peer
		fmt.Fprintf(w, "interface: %s (link %s)\n", in.Name, in.Link)
		fmt.Fprintf(w, "  public key: %s\n", in.PublicKey)
		fmt.Fprintf(w, "  listening port: %d\n", in.ListenPort)
		fmt.Fprintf(w, "  address: %s\n", in.Address)
		fmt.Fprintf(w, "  mtu: %d\n", in.MTU)
		if in.GSOFallbacks > 0 {
			fmt.Fprintf(w, "  gso fallbacks: %d (tunnel MTU above the path MTU?)\n", in.GSOFallbacks)
		}
		if in.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", in.Error)
		}
		fmt.Fprintf(w, "\npeer: %s (%s, %s)\n", p.PublicKey, p.Node, p.Address)
		state := "up"
		if !p.Up {
			state = "down: " + p.Reason
		}
		if !p.Since.IsZero() {
			state += " (for " + formatAge(now.Sub(p.Since)) + ")"
		}
		fmt.Fprintf(w, "  state: %s\n", state)
		if p.Endpoint != "" {
			fmt.Fprintf(w, "  endpoint: %s\n", p.Endpoint)
		}
		ips := make([]string, len(p.AllowedIPs))
		for i, a := range p.AllowedIPs {
			ips[i] = a.String()
		}
		fmt.Fprintf(w, "  allowed ips: %s\n", orNone(strings.Join(ips, ", ")))
		hs := "never"
		if !p.LastHandshake.IsZero() {
			hs = ago(now.Sub(p.LastHandshake))
		}
		fmt.Fprintf(w, "  latest handshake: %s\n", hs)
		fmt.Fprintf(w, "  transfer: %s received, %s sent\n", bytesHuman(p.RxBytes), bytesHuman(p.TxBytes))
		if p.Keepalive > 0 {
			fmt.Fprintf(w, "  persistent keepalive: every %d seconds\n", p.Keepalive)
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// ago is `wg show`'s "1 minute, 5 seconds ago".
func ago(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	if s == 0 {
		return "Now"
	}
	var parts []string
	for _, u := range []struct {
		n    int64
		name string
	}{{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}} {
		if v := s / u.n; v > 0 {
			s -= v * u.n
			name := u.name
			if v != 1 {
				name += "s"
			}
			parts = append(parts, fmt.Sprintf("%d %s", v, name))
		}
	}
	return strings.Join(parts, ", ") + " ago"
}

// bytesHuman is `wg show`'s transfer format.
func bytesHuman(b uint64) string {
	const k = 1024
	switch {
	case b < k:
		return fmt.Sprintf("%d B", b)
	case b < k*k:
		return fmt.Sprintf("%.2f KiB", float64(b)/k)
	case b < k*k*k:
		return fmt.Sprintf("%.2f MiB", float64(b)/(k*k))
	case b < k*k*k*k:
		return fmt.Sprintf("%.2f GiB", float64(b)/(k*k*k))
	}
	return fmt.Sprintf("%.2f TiB", float64(b)/(k*k*k*k))
}
