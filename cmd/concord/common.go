package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/cmd/concord/internal/metrics"
	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/host/echo"
	"github.com/concordp2p/concord/host/perf"
	"github.com/concordp2p/concord/host/ping"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/transport/tcp"
)

// configFlags registers the flags that map onto a host.Config and returns
// the Config they fill: each flag sets one field, and a flag left at 0 (or
// unset) leaves the field's zero value, which means the library's default.
func configFlags(fs *flag.FlagSet) *host.Config {
	cfg := &host.Config{}
	fs.Var((*securityFlag)(&cfg.Upgrader.Security.Protocols), "security",
		"security `protocols` to offer, most preferred first: noise, tls or noise,tls (default noise,tls)")
	fs.DurationVar(&cfg.Upgrader.HandshakeTimeout, "handshake-timeout", 0,
		"bound on a whole upgrade: simopen, security, muxer (0: 10s)")
	fs.DurationVar(&cfg.TCP.ConnectTimeout, "connect-timeout", 0, "bound on a TCP connect (0: 5s)")
	fs.DurationVar(&cfg.TCP.UserTimeout, "user-timeout", 0,
		"TCP_USER_TIMEOUT: how long sent data may stay unacknowledged (0: 20s)")
	fs.BoolVar(&cfg.TCP.SharePort, "share-port", false,
		"let another socket listen on the same port too (the kernel then splits inbound connections)")
	fs.DurationVar(&cfg.Upgrader.Muxer.Yamux.KeepAliveInterval, "keepalive", 0,
		"yamux ping after this long without a frame from the peer (0: 10s)")
	fs.DurationVar(&cfg.Upgrader.Muxer.Yamux.PingTimeout, "ping-timeout", 0,
		"close a connection whose peer does not answer a yamux ping within this (0: 10s)")
	fs.IntVar(&cfg.Upgrader.MaxInboundUpgrades, "max-inbound-upgrades", 0,
		"inbound handshakes in flight at once (0: 64)")
	fs.IntVar(&cfg.Upgrader.MaxInboundUpgradesPerIP, "max-inbound-upgrades-per-ip", 0,
		"inbound handshakes in flight per source IP (0: 16)")
	fs.IntVar(&cfg.Upgrader.MaxInboundUpgradesPerSubnet, "max-inbound-upgrades-per-subnet", 0,
		"inbound handshakes in flight per source /24 or /64 (0: 32)")
	fs.IntVar(&cfg.Upgrader.MaxInboundProbation, "max-inbound-probation", 0,
		"inbound connections waiting for their first bytes while a limit is full (0: 32)")
	fs.IntVar(&cfg.Upgrader.MaxInboundProbationPerIP, "max-inbound-probation-per-ip", 0,
		"of those, per source IP (0: 4)")
	fs.DurationVar(&cfg.Upgrader.FirstByteTimeout, "first-byte-timeout", 0,
		"close an inbound connection that sends nothing for this long (0: 1s; negative: none)")
	return cfg
}

// securityFlag is the -security flag: "noise", "tls", or a comma-separated
// preference list; empty means the host's default (Noise, then TLS).
type securityFlag []string

func (s *securityFlag) String() string { return strings.Join(*s, ",") }

func (s *securityFlag) Set(v string) error {
	var out []string
	for name := range strings.SplitSeq(v, ",") {
		id, err := securityID(strings.TrimSpace(name))
		if err != nil && name == v {
			return errors.New("want noise, tls or a list such as tls,noise") // the flag package names v
		}
		if err != nil {
			return err
		}
		out = append(out, id)
	}
	*s = out
	return nil
}

func securityID(name string) (string, error) {
	switch name {
	case "noise", host.SecurityNoise:
		return host.SecurityNoise, nil
	case "tls", host.SecurityTLS:
		return host.SecurityTLS, nil
	}
	return "", fmt.Errorf("unknown security protocol %q: want noise, tls or a list such as tls,noise", name)
}

// multiaddrsFlag is a repeatable multiaddr flag.
type multiaddrsFlag []ma.Multiaddr

func (m *multiaddrsFlag) String() string {
	var s []string
	for _, a := range *m {
		s = append(s, a.String())
	}
	return strings.Join(s, " ")
}

func (m *multiaddrsFlag) Set(v string) error {
	a, err := ma.NewMultiaddr(v)
	if err != nil {
		// The flag package quotes the value already.
		return errors.New(errorAfter(err, v))
	}
	*m = append(*m, a)
	return nil
}

// loadOrCreateKey reads the key file at path, or creates it (mode 0600) with
// a fresh Ed25519 key if it does not exist. A missing directory is an error
// unless createDir (the default key path's concord folder, made 0700): a
// mistyped -key should not leave a tree of folders behind.
func loadOrCreateKey(path string, createDir bool) (k peer.PrivKey, created bool, err error) {
	k, err = peer.ReadKeyFile(path)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("reading key file: %w", err)
	}
	dir := filepath.Dir(path)
	if createDir {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, false, fmt.Errorf("creating key directory: %w", err)
		}
	} else if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, false, fmt.Errorf("key file %s: directory %s does not exist (create it first, e.g. mkdir -m 700 %s)", path, dir, dir)
	}
	k, err = peer.GenerateKey(peer.Ed25519, nil)
	if err != nil {
		return nil, false, fmt.Errorf("generating key: %w", err)
	}
	if err := peer.WriteKeyFile(path, k); err != nil {
		return nil, false, fmt.Errorf("writing key file: %w", err)
	}
	return k, true, nil
}

// serveProtocols registers the ping, perf and echo handlers on h, their
// bytes counted in m (if not nil). ctx bounds the handlers: cancel it
// before closing the host.
func serveProtocols(ctx context.Context, h *host.Host, m *metrics.Metrics) {
	h.SetStreamHandler(ping.ID, func(s *host.Stream) { _ = ping.Serve(ctx, m.CountStream(ping.ID, s)) })
	h.SetStreamHandler(perf.ID, func(s *host.Stream) { _ = perf.Serve(ctx, m.CountStream(perf.ID, s)) })
	h.SetStreamHandler(echo.ID, func(s *host.Stream) { _ = echo.Serve(ctx, m.CountStream(echo.ID, s)) })
}

// parsePeerAddr parses a command's ADDR argument, which must end in
// /p2p/<peer ID>.
func parsePeerAddr(cmd, s string) (peer.AddrInfo, error) {
	ai, err := peer.AddrInfoFromString(s)
	if err != nil {
		return peer.AddrInfo{}, usageErrorf("%s: bad ADDR %q: %s (want e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...)", cmd, s, errorAfter(err, s))
	}
	if len(ai.Addrs) == 0 {
		return peer.AddrInfo{}, usageErrorf("%s: ADDR %q has no transport address before /p2p/", cmd, s)
	}
	return *ai, nil
}

// errorAfter is err's message after the last place it quotes s: the parsers
// below name the input they were given at each layer, and the command has
// named it once already.
func errorAfter(err error, s string) string {
	msg := err.Error()
	q := strconv.Quote(s)
	if i := strings.LastIndex(msg, q); i >= 0 {
		msg = strings.TrimLeft(msg[i+len(q):], ": ")
	}
	return msg
}

// ipPort splits an /ip4|ip6/.../tcp/PORT multiaddr.
func ipPort(a ma.Multiaddr) (ip net.IP, port string, v4, ok bool) {
	port, err := a.ValueForProtocol(ma.P_TCP)
	if err != nil {
		return nil, "", false, false
	}
	if s, err := a.ValueForProtocol(ma.P_IP4); err == nil {
		return net.ParseIP(s), port, true, true
	}
	if s, err := a.ValueForProtocol(ma.P_IP6); err == nil {
		return net.ParseIP(s), port, false, true
	}
	return nil, "", false, false
}

// p2pAddrs returns h's dialable addresses with /p2p/<id>.
func p2pAddrs(h *host.Host) ([]ma.Multiaddr, error) {
	ai := peer.AddrInfo{ID: h.ID(), Addrs: tcp.ExpandUnspecified(h.Addrs())}
	return ai.P2pAddrs()
}
