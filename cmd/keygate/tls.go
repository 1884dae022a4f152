package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// certReloader serves a certificate and key pair read from files, and
// reads them again on SIGHUP, so that a renewed certificate is served
// without a restart. A pair that fails to load leaves the current one in
// place (and is logged): a bad renewal never takes HTTPS down.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]
	stop              chan struct{}
	done              chan struct{}
}

// newCertReloader loads the pair once; an error stops the start.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the pair and, when it is valid, serves it from the next
// handshake on.
func (c *certReloader) reload() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("--tls-cert %s / --tls-key %s: %w", c.certFile, c.keyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("--tls-cert %s: %w", c.certFile, err)
	}
	cert.Leaf = leaf
	c.cert.Store(&cert)
	c.log.Info("TLS certificate loaded", "cert", c.certFile, "subject", leaf.Subject.String(),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// getCertificate is tls.Config.GetCertificate.
func (c *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cert.Load(), nil
}

// config returns the server's TLS configuration: TLS 1.2 at least, the
// certificate from the reloader.
func (c *certReloader) config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.getCertificate}
}

// watch reloads the pair on every SIGHUP until close.
func (c *certReloader) watch() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(c.done)
		defer signal.Stop(hup)
		for {
			select {
			case <-c.stop:
				return
			case <-hup:
				if err := c.reload(); err != nil {
					c.log.Error("SIGHUP: the TLS certificate could not be reloaded; still serving the previous one", "err", err)
				}
			}
		}
	}()
}

func (c *certReloader) close() {
	if c.stop != nil {
		close(c.stop)
		<-c.done
	}
}
