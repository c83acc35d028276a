package dns

import (
	_ "embed"
	"strconv"
	"strings"
)

// countries.csv holds one point per ISO 3166 country code (and the legacy
// codes found in geo databases: UK, EU, AP, CS, AN). Points come from
// tzdata's zone.tab (the country's main zone city) with geographic centres
// for the large countries where that city is far from the middle. A country
// database (tor-geoipdb) only says "which country"; this table turns that
// into a point so distance to the clouds can be measured.
//
//go:embed countries.csv
var countriesCSV string

type point struct {
	continent string
	lat, lon  float64
}

var countries = parseCountries(countriesCSV)

// continents are rough centres, used when only a continent is known.
var continents = map[string]point{
	"AF": {"AF", 1.6, 17.3},
	"AN": {"AN", -80, 0},
	"AS": {"AS", 34.0, 100.6},
	"EU": {"EU", 50.0, 10.0},
	"NA": {"NA", 40.0, -100.0},
	"OC": {"OC", -25.0, 140.0},
	"SA": {"SA", -15.0, -60.0},
}

func parseCountries(s string) map[string]point {
	m := make(map[string]point, 256)
	for _, line := range strings.Split(s, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != 4 {
			panic("dns: bad countries.csv line " + line)
		}
		lat, err1 := strconv.ParseFloat(f[2], 64)
		lon, err2 := strconv.ParseFloat(f[3], 64)
		if err1 != nil || err2 != nil {
			panic("dns: bad countries.csv line " + line)
		}
		m[f[0]] = point{continent: f[1], lat: lat, lon: lon}
	}
	return m
}
