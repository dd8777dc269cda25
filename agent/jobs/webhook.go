package jobs

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
)

// ErrBadWebhook is wrapped by the error of a job submitted with a webhook
// URL the queue refuses (callers answer 400).
var ErrBadWebhook = errors.New("webhook URL refused")

// metadataHosts are cloud instance-metadata names, refused like the
// link-local addresses they resolve to.
var metadataHosts = map[string]bool{
	"metadata.google.internal":   true,
	"metadata":                   true,
	"instance-data":              true,
	"instance-data.ec2.internal": true,
	"metadata.azure.internal":    true,
}

// metadataAddrs are metadata service addresses outside the link-local
// ranges (Alibaba Cloud, AWS IPv6).
var metadataAddrs = []netip.Addr{netip.MustParseAddr("100.100.100.200"), netip.MustParseAddr("fd00:ec2::254")}

// blockedAddr reports why a webhook may not go to ip ("" if it may):
// link-local (which includes 169.254.169.254, the usual metadata
// service), multicast, unspecified and known metadata addresses.
func blockedAddr(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "a link-local address (cloud metadata services live there)"
	case ip.IsMulticast():
		return "a multicast address"
	case ip.IsUnspecified():
		return "the unspecified address"
	}
	for _, m := range metadataAddrs {
		if ip == m {
			return "a cloud metadata address"
		}
	}
	return ""
}

// allowed reports whether host is in the allow-list: an exact host name or
// address (case-insensitive), or "*.example.com" for any subdomain.
func allowed(host string, allow []string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, a := range allow {
		a = strings.ToLower(a)
		if a == host || (strings.HasPrefix(a, "*.") && strings.HasSuffix(host, a[1:])) {
			return true
		}
	}
	return false
}

// ValidateWebhook checks a webhook URL at submit time: absolute http or
// https with a host, no user info; if allow is non-empty the host must be
// in it (an allow-listed host is accepted whatever its address); otherwise
// link-local, multicast, unspecified and cloud metadata hosts are refused.
// Loopback and private addresses are allowed (receivers on the device or
// its LAN are the common case); set an allow-list to restrict them.
func ValidateWebhook(raw string, allow []string) error {
	if len(raw) > 2048 {
		return fmt.Errorf("%w: %d bytes, at most 2048", ErrBadWebhook, len(raw))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadWebhook, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: %q: scheme %q, want http or https", ErrBadWebhook, raw, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: %q: user info in webhook URLs is not allowed", ErrBadWebhook, u.Redacted())
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: %q: no host", ErrBadWebhook, raw)
	}
	if len(allow) > 0 {
		if !allowed(host, allow) {
			return fmt.Errorf("%w: %q: host %s is not in the webhook allow-list %v", ErrBadWebhook, raw, host, allow)
		}
		return nil
	}
	if metadataHosts[strings.ToLower(strings.TrimSuffix(host, "."))] {
		return fmt.Errorf("%w: %q: %s is a cloud metadata host", ErrBadWebhook, raw, host)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if why := blockedAddr(ip); why != "" {
			return fmt.Errorf("%w: %q: %s is %s", ErrBadWebhook, raw, host, why)
		}
	}
	return nil
}

// webhookClient is the default webhook client: it checks the address it
// actually connects to (after DNS resolution, so a name that resolves to a
// metadata address is refused too) unless that address is allow-listed,
// and validates every redirect like a submitted URL.
func webhookClient(allow []string) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, Control: func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("webhook dial %s: %w", address, err)
		}
		if why := blockedAddr(ip); why != "" && !allowed(host, allow) {
			return fmt.Errorf("webhook dial %s: %s: %w", address, why, ErrBadWebhook)
		}
		return nil
	}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = d.DialContext
	tr.Proxy = nil // an environment proxy would bypass the address check
	return &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return fmt.Errorf("webhook: more than 5 redirects")
		}
		return ValidateWebhook(req.URL.String(), allow)
	}}
}
