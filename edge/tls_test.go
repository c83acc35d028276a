package edge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/test/testenv"
)

// writeCert writes a self-signed certificate for names and returns the
// cert and key paths.
func writeCert(t *testing.T, dir, name string, serial int64, names ...string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	cp, kp := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cp, kp
}

func TestTLSBySNI(t *testing.T) {
	clk := &clock{}
	dir := t.TempDir()
	o := newOrigin(t, clk, body("secure", "Cache-Control", "max-age=60"))
	shopCrt, shopKey := writeCert(t, dir, "shop", 1, "shop.cdn.test", "www.shop.test")
	blogCrt, blogKey := writeCert(t, dir, "blog", 2, "blog.cdn.test")
	mk := func(rev int64) *config.Snapshot {
		shop := simple(o.URL)
		shop.Spec.TLS = config.TLS{CertFile: shopCrt, KeyFile: shopKey}
		blog := simple(o.URL)
		blog.Name, blog.Spec.Aliases = "blog", []string{}
		blog.Spec.TLS = config.TLS{CertFile: blogCrt, KeyFile: blogKey}
		s := site(rev, shop)
		s.Distributions = append(s.Distributions, blog)
		return s
	}
	h := newHarness(t, clk, mk(1))
	addr := h.e.Addrs()["https"]
	if addr == "" {
		t.Fatal("no https listener although distributions have TLS")
	}
	client := func(sni string) *http.Client {
		pool := x509.NewCertPool()
		for _, f := range []string{shopCrt, blogCrt} {
			b, _ := os.ReadFile(f)
			pool.AppendCertsFromPEM(b)
		}
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: sni},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 5 * time.Second}
	}
	get := func(c *http.Client, host string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", "https://"+host+"/t", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET https://%s/t: %v", host, err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		buf := make([]byte, 512)
		for {
			n, err := resp.Body.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp, sb.String()
	}
	resp, b := get(client("shop.cdn.test"), "shop.cdn.test")
	if resp.StatusCode != 200 || b != "secure" || resp.Proto != "HTTP/2.0" {
		t.Fatalf("got %s %s %q", resp.Proto, resp.Status, b)
	}
	if resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 1 {
		t.Fatal("wrong certificate for shop")
	}
	// A request for shop on a connection made for blog is misdirected.
	resp, b = get(client("blog.cdn.test"), "shop.cdn.test")
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("cross-distribution request: %s %q", resp.Status, b)
	}
	// A new certificate is picked up by the next Apply, no restart.
	writeCert(t, dir, "shop", 7, "shop.cdn.test", "www.shop.test")
	if err := role.Apply(context.Background(), h.e, mk(2)); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	b2, _ := os.ReadFile(shopCrt)
	pool.AppendCertsFromPEM(b2)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "www.shop.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if s := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); s != 7 {
		t.Fatalf("serial %d after reload, want 7", s)
	}
	// A renewed file is picked up without an Apply (checked every
	// certCheckEvery; the test moves the last check back instead of waiting).
	writeCert(t, dir, "shop", 9, "shop.cdn.test", "www.shop.test")
	c, _ := h.e.table.Load().certs.get("shop.cdn.test")
	c.checked.Store(0)
	b3, _ := os.ReadFile(shopCrt)
	pool.AppendCertsFromPEM(b3)
	conn2, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "shop.cdn.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	if s := conn2.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); s != 9 {
		t.Fatalf("serial %d after renewal on disk, want 9", s)
	}
	// Unknown SNI gets no certificate.
	if c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "nope.test"}); err == nil {
		c.Close()
		t.Fatal("handshake for unknown SNI succeeded")
	}
}

// TestCurlEndToEnd drives the edge with the real curl over HTTP and HTTPS.
func TestCurlEndToEnd(t *testing.T) {
	curl := testenv.NeedTool(t, "curl", "curl")
	clk := &clock{}
	dir := t.TempDir()
	o := newOrigin(t, clk, body("from origin\n", "Cache-Control", "max-age=300", "ETag", `"c1"`))
	crt, key := writeCert(t, dir, "shop", 1, "shop.cdn.test", "www.shop.test")
	d := simple(o.URL)
	d.Spec.TLS = config.TLS{CertFile: crt, KeyFile: key}
	h := newHarness(t, clk, site(1, d))
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(curl, append([]string{"-sS", "--max-time", "10", "-D", "-"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return strings.ToLower(strings.ReplaceAll(string(out), "\r", ""))
	}
	httpURL := h.base + "/curl.txt"
	out := run("-H", "Host: shop.cdn.test", httpURL)
	if !strings.Contains(out, "http/1.1 200") || !strings.Contains(out, "cache-status: intercloud-edge; fwd=uri-miss; fwd-status=200; stored") || !strings.HasSuffix(out, "from origin\n") {
		t.Fatalf("first curl:\n%s", out)
	}
	out = run("-H", "Host: www.shop.test", httpURL)
	if !strings.Contains(out, "cache-status: intercloud-edge; hit") || !strings.Contains(out, "age: ") {
		t.Fatalf("second curl:\n%s", out)
	}
	out = run("-H", "Host: shop.cdn.test", "-r", "0-3", httpURL)
	if !strings.Contains(out, "http/1.1 206") || !strings.Contains(out, "content-range: bytes 0-3/12") || !strings.HasSuffix(out, "from") {
		t.Fatalf("range curl:\n%s", out)
	}
	out = run("-H", "Host: nobody.test", httpURL)
	if !strings.Contains(out, "http/1.1 404") || !strings.Contains(out, `no distribution serves host "nobody.test"`) {
		t.Fatalf("unknown host curl:\n%s", out)
	}
	_, port, _ := net.SplitHostPort(h.e.Addrs()["https"])
	out = run("--http2", "--cacert", crt, "--resolve", "shop.cdn.test:"+port+":127.0.0.1", "https://shop.cdn.test:"+port+"/curl.txt")
	if !strings.Contains(out, "http/2 200") || !strings.Contains(out, "cache-status: intercloud-edge") {
		t.Fatalf("https curl:\n%s", out)
	}
	if o.count() > 2 {
		t.Fatalf("origin requests %d, want at most 2 (http and https keys)", o.count())
	}
}
