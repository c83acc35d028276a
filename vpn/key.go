package vpn

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/intercloud/intercloud/internal/fsutil"
)

// KeyLen is the size of a Curve25519 key.
const KeyLen = 32

// Key is a WireGuard private or public key. String gives the base64 form
// users and `wg` exchange; the UAPI wants hex (see hexString).
type Key [KeyLen]byte

// GenerateKey returns a new private key, clamped as `wg genkey` does.
func GenerateKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return Key{}, fmt.Errorf("vpn: read random key: %w", err)
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k, nil
}

// ParseKey decodes a base64 key (44 characters, as `wg genkey` writes).
func ParseKey(s string) (Key, error) {
	var k Key
	s = strings.TrimSpace(s)
	if s == "" {
		return k, errors.New("empty key")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return k, errors.New("key is not valid base64")
	}
	if len(b) != KeyLen {
		return k, fmt.Errorf("key is %d bytes, want %d", len(b), KeyLen)
	}
	copy(k[:], b)
	return k, nil
}

// PublicKey derives the public key of a private key.
func (k Key) PublicKey() (Key, error) {
	priv, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		return Key{}, fmt.Errorf("vpn: derive public key: %w", err)
	}
	var pub Key
	copy(pub[:], priv.PublicKey().Bytes())
	return pub, nil
}

// IsZero reports whether k is all zeroes (the UAPI's "no key").
func (k Key) IsZero() bool { return k == Key{} }

// String is the base64 form. Call it on public keys only: private keys must
// never reach a log.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// hexString is the UAPI form.
func (k Key) hexString() string { return hex.EncodeToString(k[:]) }

// ReadKeyFile reads a base64 private key from a file such as `intercloud
// keygen` or `wg genkey` writes. The error never includes the file content.
func ReadKeyFile(path string) (Key, error) {
	if path == "" {
		return Key{}, errors.New("vpn: no private key file configured")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("vpn: read private key: %w", err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("vpn: private key file %s: %w", path, err)
	}
	return k, nil
}

// WriteKeyFile writes k in base64 to path with mode 0600. It refuses to
// overwrite an existing file unless overwrite is set; the file is written
// beside the target and renamed (fsutil.WriteFile), so a reader never sees
// half a key.
func WriteKeyFile(path string, k Key, overwrite bool) error {
	if !overwrite {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("vpn: %s exists (refusing to overwrite a key)", path)
		}
	}
	if err := fsutil.WriteFile(path, []byte(k.String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("vpn: key file: %w", err)
	}
	return nil
}
