package edge

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// certCheckEvery is how often a handshake may look at the certificate
// files, so that a renewed certificate is served without an Apply.
const certCheckEvery = 10 * time.Second

// certFile is a distribution's certificate and where it came from.
type certFile struct {
	certPath, keyPath string
	cert              atomic.Pointer[tls.Certificate]
	mod               atomic.Int64 // newest mtime of the two files, unix nanos
	checked           atomic.Int64 // last check, unix nanos
}

func loadCertFile(certPath, keyPath string) (*certFile, error) {
	c := &certFile{certPath: certPath, keyPath: keyPath}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certFile) mtime() (int64, error) {
	var newest int64
	for _, p := range []string{c.certPath, c.keyPath} {
		st, err := os.Stat(p)
		if err != nil {
			return 0, fmt.Errorf("TLS certificate: %w", err)
		}
		newest = max(newest, st.ModTime().UnixNano())
	}
	return newest, nil
}

// get returns the certificate, reloading it when its files changed. A
// broken new pair keeps the previous certificate serving.
func (c *certFile) get() *tls.Certificate {
	now := time.Now().UnixNano()
	last := c.checked.Load()
	if now-last >= int64(certCheckEvery) && c.checked.CompareAndSwap(last, now) {
		if mod, err := c.mtime(); err == nil && mod != c.mod.Load() {
			if kp, err := tls.LoadX509KeyPair(c.certPath, c.keyPath); err == nil {
				c.cert.Store(&kp)
				c.mod.Store(mod)
			}
		}
	}
	return c.cert.Load()
}

// reload reads the certificate files again now, whatever their mtime.
func (c *certFile) reload() error {
	mod, err := c.mtime()
	if err != nil {
		return err
	}
	kp, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s (key %s): %w", c.certPath, c.keyPath, err)
	}
	c.cert.Store(&kp)
	c.mod.Store(mod)
	c.checked.Store(time.Now().UnixNano())
	return nil
}
