package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/cmd/concord/internal/resp"
	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/host/ping"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/upgrader"
)

// The libp2p test-plans transport-interop contract (transport-interop/
// README.md): configuration in environment variables, the listener's address
// passed through a Redis list, one JSON line from the dialer.
const (
	interopListKey        = "listenerAddr"
	interopDefaultRedis   = "redis:6379"
	interopDefaultIP      = "0.0.0.0"
	interopDefaultTimeout = 180 * time.Second
)

var interopCommand = command{
	name:    "interop",
	summary: "run one side of the libp2p test-plans transport-interop ping test",
	help: `
Implements the libp2p test-plans transport-interop contract. Configuration
comes from environment variables:

  transport             tcp (the only one Concord has)
  security              noise or tls
  muxer                 yamux
  is_dialer             true or false
  ip                    address the listener binds (default 0.0.0.0)
  redis_addr            Redis server (default redis:6379)
  test_timeout_seconds  bound on the whole test (default 180)

The listener serves ping, RPUSHes its multiaddr (with /p2p/) to the Redis list
"listenerAddr" and waits: until SIGINT or SIGTERM (exit 0) or the timeout
(exit 1). The dialer BLPOPs that address, connects, pings once and prints one
JSON line on stdout, {"handshakePlusOneRTTMillis":…,"pingRTTMilllis":…}
(the contract spells it with three l's), times in milliseconds. Diagnostics go
to stderr. An unsupported transport, security or muxer exits 127.`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		return func(ctx context.Context, e *env, args []string) error {
			if err := exactArgs("interop", args); err != nil {
				return err
			}
			cfg, err := interopConfigFromEnv(e.getenv)
			if err != nil {
				return fmt.Errorf("interop: %w", err)
			}
			ctx, cancel := context.WithTimeoutCause(ctx, cfg.timeout, errInteropTimeout)
			defer cancel()
			if cfg.dialer {
				return interopDial(ctx, e, cfg)
			}
			return interopListen(ctx, e, cfg)
		}
	},
}

var errInteropTimeout = errors.New("test_timeout_seconds passed")

type interopConfig struct {
	security string
	dialer   bool
	ip       net.IP
	redis    string
	timeout  time.Duration
}

func interopConfigFromEnv(getenv func(string) string) (interopConfig, error) {
	cfg := interopConfig{redis: interopDefaultRedis, timeout: interopDefaultTimeout}
	if t := getenv("transport"); t != "tcp" {
		return cfg, fmt.Errorf("%w: transport %q (Concord has tcp)", errUnsupported, t)
	}
	if m := getenv("muxer"); m != "yamux" {
		return cfg, fmt.Errorf("%w: muxer %q (Concord has yamux)", errUnsupported, m)
	}
	switch s := getenv("security"); s {
	case "noise":
		cfg.security = host.SecurityNoise
	case "tls":
		cfg.security = host.SecurityTLS
	default:
		return cfg, fmt.Errorf("%w: security %q (Concord has noise and tls)", errUnsupported, s)
	}
	switch d := getenv("is_dialer"); d {
	case "true":
		cfg.dialer = true
	case "false":
	default:
		return cfg, fmt.Errorf("is_dialer is %q, want true or false", d)
	}
	ip := getenv("ip")
	if ip == "" {
		ip = interopDefaultIP
	}
	if cfg.ip = net.ParseIP(ip); cfg.ip == nil {
		return cfg, fmt.Errorf("ip %q is not an IP address", ip)
	}
	if r := getenv("redis_addr"); r != "" {
		cfg.redis = r
	}
	if s := getenv("test_timeout_seconds"); s != "" {
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || n <= 0 {
			return cfg, fmt.Errorf("test_timeout_seconds %q is not a positive number", s)
		}
		cfg.timeout = time.Duration(n * float64(time.Second))
	}
	return cfg, nil
}

func interopListen(ctx context.Context, e *env, cfg interopConfig) error {
	listen, err := tcpMultiaddr(cfg.ip, "0")
	if err != nil {
		return fmt.Errorf("interop: listen address: %w", err)
	}
	h, err := host.New(host.Config{ListenAddrs: []ma.Multiaddr{listen}, Upgrader: securityOnly(cfg.security)})
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	hctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		_ = h.Close()
	}()
	h.SetStreamHandler(ping.ID, func(s *host.Stream) { _ = ping.Serve(hctx, s) })
	addr, err := publishableAddr(h)
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	rc, err := resp.Dial(ctx, cfg.redis)
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	_, err = rc.RPush(ctx, interopListKey, addr.String())
	_ = rc.Close()
	if err != nil {
		return fmt.Errorf("interop: publishing the listen address: %w", err)
	}
	fmt.Fprintf(e.stderr, "listening on %s\n", addr)
	<-ctx.Done()
	if errors.Is(context.Cause(ctx), errInteropTimeout) {
		return fmt.Errorf("interop: listener: %w without the runner stopping it", errInteropTimeout)
	}
	return nil
}

// publishableAddr is the listen address the dialer should use: on an
// unspecified IP, the first interface address that is not loopback (the
// runner's containers reach each other that way), else loopback.
func publishableAddr(h *host.Host) (ma.Multiaddr, error) {
	addrs := expandUnspecified(h.Addrs())
	if len(addrs) == 0 {
		return nil, errors.New("the host has no listen address")
	}
	best := addrs[0]
	for _, a := range addrs {
		if ip, _, _, ok := ipPort(a); ok && !ip.IsLoopback() && !ip.IsUnspecified() {
			best = a
			break
		}
	}
	ps, err := peer.AddrInfo{ID: h.ID(), Addrs: []ma.Multiaddr{best}}.P2pAddrs()
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// interopResult is the dialer's JSON line; the key spellings are the
// contract's.
type interopResult struct {
	HandshakePlusOneRTTMillis float64 `json:"handshakePlusOneRTTMillis"`
	PingRTTMillis             float64 `json:"pingRTTMilllis"`
}

func interopDial(ctx context.Context, e *env, cfg interopConfig) error {
	rc, err := resp.Dial(ctx, cfg.redis)
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	wait := cfg.timeout
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	addr, err := rc.BLPop(ctx, interopListKey, wait)
	_ = rc.Close()
	if err != nil {
		return fmt.Errorf("interop: waiting for the listener's address: %w", err)
	}
	ai, err := peer.AddrInfoFromString(strings.TrimSpace(addr))
	if err != nil {
		return fmt.Errorf("interop: listener address %q: %w", addr, err)
	}
	h, err := host.New(host.Config{Upgrader: securityOnly(cfg.security)})
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	defer h.Close()
	fmt.Fprintf(e.stderr, "dialing %s\n", addr)
	start := time.Now()
	if _, err := h.Connect(ctx, *ai); err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	s, err := h.NewStream(ctx, ai.ID, ping.ID)
	if err != nil {
		return fmt.Errorf("interop: opening ping stream: %w", err)
	}
	rtt, err := ping.Ping(ctx, s, nil)
	_ = s.Close()
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	out, err := json.Marshal(interopResult{HandshakePlusOneRTTMillis: millis(time.Since(start)), PingRTTMillis: millis(rtt)})
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", out)
	return err
}

// securityOnly is an upgrader configuration offering one security protocol.
func securityOnly(id string) upgrader.Config {
	return upgrader.Config{Security: upgrader.SecurityConfig{Protocols: []string{id}}}
}
