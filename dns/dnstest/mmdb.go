// Package dnstest builds geo databases for the dns tests and benchmarks,
// so that no downloaded database is ever needed.
package dnstest

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Entry places one network. Empty fields are left out of the record, as in
// a Country database (no coordinates) or a sparse City one.
type Entry struct {
	CIDR      string
	Country   string
	Continent string
	Lat, Lon  float64
	NoCoords  bool
}

// WriteMMDB writes a GeoIP2-City style database holding entries to path.
func WriteMMDB(path string, entries []Entry) error {
	t, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "GeoIP2-City",
		RecordSize:              28,
		IPVersion:               6,
		IncludeReservedNetworks: true, // tests place 127/8 and other reserved space
	})
	if err != nil {
		return err
	}
	for _, e := range entries {
		p, err := netip.ParsePrefix(e.CIDR)
		if err != nil {
			return fmt.Errorf("entry %s: %w", e.CIDR, err)
		}
		rec := mmdbtype.Map{}
		if e.Country != "" {
			rec["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(e.Country)}
		}
		if e.Continent != "" {
			rec["continent"] = mmdbtype.Map{"code": mmdbtype.String(e.Continent)}
		}
		if !e.NoCoords {
			rec["location"] = mmdbtype.Map{"latitude": mmdbtype.Float64(e.Lat), "longitude": mmdbtype.Float64(e.Lon)}
		}
		n := &net.IPNet{IP: net.IP(p.Masked().Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
		if err := t.Insert(n, rec); err != nil {
			return fmt.Errorf("entry %s: %w", e.CIDR, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := t.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
