package config

import "testing"

func TestNodeAdminURL(t *testing.T) {
	for _, c := range []struct {
		admin, address, want string
	}{
		{"", "127.0.0.3", ""},
		{"127.0.0.2:9180", "", "http://127.0.0.2:9180"},
		{"127.0.0.2:9180", "127.0.0.3", "http://127.0.0.2:9180"},
		{":9180", "127.0.0.3", "http://127.0.0.3:9180"},
		{":9180", "", "http://127.0.0.1:9180"},
		{"0.0.0.0:9180", "", "http://127.0.0.1:9180"},
		{"[::]:9180", "::1", "http://[::1]:9180"},
		{"localhost:9180", "127.0.0.3", "http://localhost:9180"},
	} {
		n := &Node{Address: c.address, Listen: Listen{Admin: c.admin}}
		if got := n.AdminURL(); got != c.want {
			t.Errorf("admin %q address %q: %q, want %q", c.admin, c.address, got, c.want)
		}
	}
}
