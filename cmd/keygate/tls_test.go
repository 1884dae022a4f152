package main

import (
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
	"syscall"
	"testing"
	"time"
)

// selfSigned returns a PEM certificate for 127.0.0.1 with the given serial
// number, and its PEM private key.
func selfSigned(t *testing.T, serial int64) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "keygate test"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), cert
}

// writePair writes a certificate and key where keygate reads them.
func writePair(t *testing.T, certFile, keyFile string, certPEM, keyPEM []byte) {
	t.Helper()
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

// servedSerial connects to addr over TLS, trusting pool, and returns the
// serial number of the certificate served.
func servedSerial(t *testing.T, addr string, pool *x509.CertPool) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// keygate serve --tls-cert/--tls-key serves HTTPS, and SIGHUP makes it
// serve a renewed pair without a restart; a broken pair on SIGHUP leaves
// the current one served. /metrics moves to --metrics-addr (HTTPS too)
// and, with --metrics-auth, needs a root key with the metrics permission.
func TestServeTLSReloadAndMetricsListener(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c1, k1, x1 := selfSigned(t, 1001)
	c2, k2, x2 := selfSigned(t, 1002)
	writePair(t, certFile, keyFile, c1, k1)
	pool := x509.NewCertPool()
	pool.AddCert(x1)
	pool.AddCert(x2)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	addr, metricsAddr := freeAddr(t), freeAddr(t)
	s := &server{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	s.cmd = exec.Command(binary, "serve", "--addr", addr, "--db", filepath.Join(dir, "keygate.db"),
		"--tls-cert", certFile, "--tls-key", keyFile, "--metrics-addr", metricsAddr, "--metrics-auth")
	s.cmd.Env = cleanEnv()
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(t) })
	// The checking proxies reach both listeners over HTTPS, trusting pool.
	s.url = checkedURL(t, "https://"+addr, &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}})
	metricsURL := checkedURL(t, "https://"+metricsAddr, &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}})
	get := func(url, root string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if root != "" {
			req.Header.Set("Authorization", "Bearer "+root)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := client.Get(s.url + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keygate did not come up over HTTPS; stderr:\n%s", s.stderr)
		}
	}
	root := rootKeyRE.FindString(s.stdout.String())
	if got := servedSerial(t, addr, pool); got != 1001 {
		t.Fatalf("served certificate serial %d, want 1001", got)
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("plain HTTP on the TLS port answered %d", resp.StatusCode)
		}
	}

	// Metrics: only on their own listener, over TLS, with a root key.
	if code := get(s.url+"/metrics", root); code != http.StatusNotFound {
		t.Errorf("/metrics on --addr: %d, want 404", code)
	}
	if code := get(metricsURL+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics on --metrics-addr without a root key: %d, want 401", code)
	}
	if code := get(metricsURL+"/metrics", root); code != http.StatusOK {
		t.Errorf("/metrics on --metrics-addr with the root key: %d, want 200", code)
	}

	// A renewed pair, then SIGHUP.
	writePair(t, certFile, keyFile, c2, k2)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); servedSerial(t, addr, pool) != 1002; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP the old certificate is still served; stderr:\n%s", s.stderr)
		}
	}
	if got := servedSerial(t, metricsAddr, pool); got != 1002 {
		t.Errorf("the metrics listener serves serial %d after SIGHUP, want 1002", got)
	}

	// A broken pair: logged, and the current one stays.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.stderr.String(), "could not be reloaded"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a broken pair on SIGHUP was not reported; stderr:\n%s", s.stderr)
		}
	}
	if got := servedSerial(t, addr, pool); got != 1002 {
		t.Fatalf("after a failed reload serial %d is served, want 1002 still", got)
	}
	if code := get(s.url+"/healthz", ""); code != http.StatusOK {
		t.Fatalf("/healthz after a failed reload: %d", code)
	}
}

func TestServeTLSBadFlags(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("junk"), 0o600)
	for _, args := range [][]string{
		{"serve", "--tls-cert", bad},
		{"serve", "--tls-key", bad},
		{"serve", "--tls-cert", bad, "--tls-key", bad, "--db", filepath.Join(dir, "k.db")},
		{"serve", "--metrics-addr", "nope"},
	} {
		cmd := exec.Command(binary, args...)
		cmd.Env = cleanEnv()
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.HasPrefix(string(out), "keygate: ") {
			t.Errorf("keygate %v: got %v, %q; want exit 2 with the reason", args, err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "k.db")); err == nil {
		t.Error("a bad TLS pair stopped the start only after the database was created")
	}
}
