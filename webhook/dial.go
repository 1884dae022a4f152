package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/keygate/keygate"
)

// ErrForbiddenAddress is the cause of a refused connection to an address
// that webhooks may not reach.
var ErrForbiddenAddress = errors.New("webhook: the address is loopback, private, link-local or otherwise not public")

// nonPublic are the ranges, besides those netip classifies, that are not
// reachable on the public internet: shared address space (carrier NAT),
// "this network", benchmarking, IETF protocol assignments, documentation,
// NAT64 and 6to4 relays that can reach private IPv4.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("100::/64"),
}

// Public reports whether a is a public unicast address: not loopback,
// private (RFC 1918, fc00::/7), link-local (which holds cloud metadata
// services at 169.254.169.254), multicast, unspecified, or a reserved
// range.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// control is a net.Dialer Control function that refuses to connect to an
// address that is not Public. It runs after name resolution, on the very
// address being dialed, so a name that resolves to a public address when
// checked and to a private one when used (DNS rebinding) is still refused.
func control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook: dial %s %s: %w", network, address, ErrForbiddenAddress)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("webhook: dial %s: %w", ap.Addr(), ErrForbiddenAddress)
	}
	return nil
}

// Timeout bounds one delivery attempt, from dialing to the end of the
// answer's headers.
const Timeout = 10 * time.Second

// NewClient returns the HTTP client deliveries use: no proxy (the guard
// must see the real destination), no redirects followed (a redirect could
// lead anywhere; a 3xx counts as a failed attempt), a Timeout per
// attempt, and, unless allowPrivate, a dialer that refuses non-public
// addresses.
func NewClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: Timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = control
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   Timeout,
		ResponseHeaderTimeout: Timeout,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// CheckURL checks an endpoint URL when it is registered: keygate's rules
// for the URL (keygate.ValidateWebhookURL), and, unless allowPrivate, that
// a host given as an IP address, or named localhost, is public. A name is
// checked again at each delivery, on the address it resolves to then.
func CheckURL(raw string, allowPrivate bool) error {
	if err := keygate.ValidateWebhookURL(raw); err != nil {
		return err
	}
	if allowPrivate {
		return nil
	}
	u, _ := url.Parse(raw) // parsed by ValidateWebhookURL
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if !Public(a) {
			return keygate.Errorf(keygate.EINVALID, "url: %s is a loopback, private or link-local address, which webhooks may not reach; start keygate with --webhooks-allow-private to allow it.", host)
		}
		return nil
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return keygate.Errorf(keygate.EINVALID, "url: %s is a loopback name, which webhooks may not reach; start keygate with --webhooks-allow-private to allow it.", host)
	}
	return nil
}
