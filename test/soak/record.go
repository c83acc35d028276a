package soak

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Recording is everything one soak run observed, as written to run.json.gz;
// the report (Report, Plot) is computed from it alone.
type Recording struct {
	Seed     int64         `json:"seed"`
	Duration time.Duration `json:"duration"`
	// LeaseTTL is the site's store.leaseTTL, the bound of the DNS invariant.
	LeaseTTL time.Duration `json:"leaseTTL"`
	// Slack is how long after a fault's recovery its window still runs.
	Slack  time.Duration `json:"slack"`
	Phases []*Phase      `json:"phases"`
}

// Phase is one stretch of load: "baseline" (no faults) or "faults".
type Phase struct {
	Name   string    `json:"name"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	HTTP   []Slice   `json:"http"`
	DNS    []Slice   `json:"dns"`
	Ping   []Ping    `json:"ping"`
	Faults []Fault   `json:"faults"`
	// Control are the operator commands of the control-plane stream.
	Control []Op `json:"control"`
	// DNSAnswers are the lease checker's queries.
	DNSAnswers []DNSAnswer   `json:"dnsAnswers"`
	Routes     []RouteSample `json:"routes"`
	// ProcsStart and ProcsEnd are every daemon's memory and descriptors
	// when the load began and when it ended.
	ProcsStart []ProcStat `json:"procsStart"`
	ProcsEnd   []ProcStat `json:"procsEnd"`
	BadInput   []BadInput `json:"badInput"`
	// Exits are the processes that ended during the phase other than by
	// a kill fault.
	Exits []Exit `json:"exits,omitempty"`
	// Store is each member's /health, every five seconds.
	Store []StoreSample `json:"store"`
	// Violations are the invariants broken, found while running or at
	// the end (those of the failures are computed: see Attribute).
	Violations []string `json:"violations"`
	// Notes are facts the run logged (faults that could not be made).
	Notes []string `json:"notes"`
}

// Slice is one short run of a load generator (wrk, dnsperf) against one
// target: its counts and latency.
type Slice struct {
	Tool   string    `json:"tool"`
	Target string    `json:"target"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Requests answered successfully, Failed the others (socket errors,
	// timeouts, statuses >= 400 for HTTP; lost queries and error rcodes
	// for DNS).
	OK     int64 `json:"ok"`
	Failed int64 `json:"failed"`
	// Lost are the DNS failures that were queries never answered (the
	// rest of Failed answered with an error code).
	Lost int64 `json:"lost,omitempty"`
	// Refused are the failures that were connections refused: wrk
	// retries a dead edge at once, so they count attempts, not requests.
	Refused int64 `json:"refused,omitempty"`
	// Timeouts are the failures that were wrk's timeouts (2 s, on the
	// wall clock).
	Timeouts int64 `json:"timeouts,omitempty"`
	Hits     int64 `json:"hits,omitempty"`
	// Pct are the latency percentiles 1..100 in milliseconds (wrk);
	// dnsperf gives only the mean, kept in Mean.
	Pct  []float64 `json:"pct,omitempty"`
	Mean float64   `json:"mean"`
	Max  float64   `json:"max"`
	// Err is why the slice could not run at all (counted as failed).
	Err string `json:"err,omitempty"`
}

// Ping is one echo of the cross-cloud ping.
type Ping struct {
	From string    `json:"from"`
	Time time.Time `json:"time"`
	OK   bool      `json:"ok"`
}

// Fault is one fault of the schedule as it happened.
type Fault struct {
	Kind   string    `json:"kind"`
	Target string    `json:"target"`
	Start  time.Time `json:"start"`
	Healed time.Time `json:"healed"`
	// Recovered is when every node was live and current again with every
	// route in place (zero: never, within the recovery bound).
	Recovered time.Time `json:"recovered"`
	// Reroute is, for a cut, how long until the routes went around it.
	Reroute time.Duration `json:"reroute,omitempty"`
	Note    string        `json:"note,omitempty"`
	// NotMade is why the fault could not be made (a broken invariant of
	// the soak itself: the schedule did not run as drawn).
	NotMade string `json:"notMade,omitempty"`
}

// Window is the stretch a fault may be blamed for.
func (f Fault) Window(slack time.Duration) (time.Time, time.Time) {
	end := f.Recovered
	if end.IsZero() {
		end = f.Healed
	}
	return f.Start, end.Add(slack)
}

// Op is one operator command of the control-plane stream.
type Op struct {
	Kind     string    `json:"kind"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	OK       bool      `json:"ok"`
	Revision int64     `json:"revision,omitempty"`
	ID       string    `json:"id,omitempty"`
	Err      string    `json:"err,omitempty"`
}

// DNSAnswer is one query of the lease checker.
type DNSAnswer struct {
	Server  string    `json:"server"`
	Time    time.Time `json:"time"`
	Answers []string  `json:"answers"`
	Err     string    `json:"err,omitempty"`
}

// RouteSample is one look at a gateway's kernel routes.
type RouteSample struct {
	Gateway string    `json:"gateway"`
	Time    time.Time `json:"time"`
	// Missing lists the wanted routes that were not there.
	Missing []string `json:"missing,omitempty"`
	// Bulk counts the on-premises /24s of 10.128.0.0/9 in the kernel.
	Bulk int `json:"bulk"`
}

// ProcStat is one process's resident memory and open descriptors.
type ProcStat struct {
	Name string `json:"name"`
	Pid  int    `json:"pid"`
	RSS  int64  `json:"rss"`
	FDs  int    `json:"fds"`
}

// BadInput is what one malformed-input sender did.
type BadInput struct {
	Kind    string `json:"kind"`
	Target  string `json:"target"`
	Sent    int64  `json:"sent"`
	Refused int64  `json:"refused"` // answered with an error status or closed
	Note    string `json:"note,omitempty"`
}

// Exit is a process that ended by itself.
type Exit struct {
	Name string    `json:"name"`
	Time time.Time `json:"time"`
	Err  string    `json:"err"`
	Tail string    `json:"tail"`
}

// StoreSample is one look at a store member's /health.
type StoreSample struct {
	Member string    `json:"member"`
	Time   time.Time `json:"time"`
	Health string    `json:"health"` // etcd's answer, or why there was none
	OK     bool      `json:"ok"`
}

// Save writes the recording as gzipped JSON (a 10-minute run records
// megabytes of slices and checks).
func (r *Recording) Save(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("soak: write recording: %w", err)
	}
	zw := gzip.NewWriter(f)
	if err := json.NewEncoder(zw).Encode(r); err != nil {
		f.Close()
		return fmt.Errorf("soak: encode recording: %w", err)
	}
	if err := errors.Join(zw.Close(), f.Close()); err != nil {
		return fmt.Errorf("soak: write recording %s: %w", path, err)
	}
	return nil
}

// Load reads a recording written by Save.
func Load(path string) (*Recording, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("soak: read recording: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("soak: read recording %s: %w", path, err)
	}
	var r Recording
	if err := json.NewDecoder(zr).Decode(&r); err != nil {
		return nil, fmt.Errorf("soak: decode recording %s: %w", path, err)
	}
	return &r, nil
}

// Phase returns the phase called name, or nil.
func (r *Recording) Phase(name string) *Phase {
	for _, p := range r.Phases {
		if p.Name == name {
			return p
		}
	}
	return nil
}
