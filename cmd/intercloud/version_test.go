package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestBuildVersion(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/intercloud/intercloud", Version: "v1.2.0"},
		Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"},
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-05T16:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	clean := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"}}}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"stamped", stamped, true, "intercloud v1.2.0\n  revision 0123abcd (2026-12-05T16:00:00Z), modified\n  go1.26.8 linux/amd64"},
		{"no vcs", clean, true, "intercloud (devel)\n  go1.26.8 linux/arm64"},
		{"no build info", nil, false, "intercloud (no build information)"},
	} {
		if got := buildVersion(tc.bi, tc.ok); got != tc.want {
			t.Errorf("%s:\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
	// The test binary itself carries build information.
	if bi, ok := debug.ReadBuildInfo(); !ok || !strings.Contains(buildVersion(bi, ok), bi.GoVersion) {
		t.Errorf("own build: %v %q", ok, buildVersion(bi, ok))
	}
}
