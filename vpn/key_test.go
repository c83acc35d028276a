package vpn

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intercloud/intercloud/test/testenv"
)

func TestParseKey(t *testing.T) {
	good, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"generated", good.String(), true},
		{"with newline", good.String() + "\n", true},
		{"empty", "", false},
		{"not base64", "not a key!", false},
		{"short", "AAAA", false},
		{"33 bytes", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKey(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseKey(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if tt.ok && k != good {
				t.Fatalf("round trip changed the key")
			}
			if err != nil && strings.Contains(err.Error(), tt.in) && tt.in != "" {
				t.Fatalf("error %q echoes the key material", err)
			}
		})
	}
}

// The public key we derive must be the one `wg pubkey` derives.
func TestPublicKeyMatchesWg(t *testing.T) {
	wg := testenv.NeedTool(t, "wg", "wireguard-tools")
	for range 5 {
		k, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		pub, err := k.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(wg, "pubkey")
		cmd.Stdin = strings.NewReader(k.String() + "\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("wg pubkey: %v", err)
		}
		if got := strings.TrimSpace(string(out)); got != pub.String() {
			t.Fatalf("public key %s, wg says %s", pub, got)
		}
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.key")
	k, _ := GenerateKey()
	if err := WriteKeyFile(path, k, false); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := ReadKeyFile(path)
	if err != nil || got != k {
		t.Fatalf("ReadKeyFile = %v, %v", got == k, err)
	}
	if err := WriteKeyFile(path, k, false); err == nil {
		t.Fatal("overwrote an existing key without being asked")
	}
	k2, _ := GenerateKey()
	if err := WriteKeyFile(path, k2, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := ReadKeyFile(path); got != k2 {
		t.Fatal("overwrite did not take")
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("read a missing file")
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, err := ReadKeyFile(path); err == nil || strings.Contains(err.Error(), "garbage") {
		t.Fatalf("bad key file: err = %v", err)
	}
}

func FuzzParseKey(f *testing.F) {
	k, _ := GenerateKey()
	f.Add(k.String())
	f.Add("")
	f.Add("====")
	f.Add(strings.Repeat("A", 44))
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		// Whatever parses must print back to an equivalent key.
		k2, err := ParseKey(k.String())
		if err != nil || k2 != k {
			t.Fatalf("round trip of %q: %v", s, err)
		}
	})
}
