package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/cmd/concord/internal/resp"
	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/host/ping"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/transport/tcp"
	"github.com/concordp2p/concord/upgrader"
)

// Two contracts of the libp2p test runners, told apart by the case of their
// variables:
//
//   - the older transport-interop one (libp2p/test-plans
//     transport-interop/README.md): lowercase variables, the Redis list
//     "listenerAddr", one JSON line from the dialer;
//   - the unified one (libp2p/unified-testing
//     docs/write-a-transport-test-app.md): uppercase variables, the Redis
//     list "<TEST_KEY>_listener_multiaddr", YAML from the dialer.
const (
	interopListKey         = "listenerAddr"
	interopUnifiedListTail = "_listener_multiaddr"
	interopDefaultRedis    = "redis:6379"
	interopDefaultUnified  = "transport-redis:6379"
	interopDefaultIP       = "0.0.0.0"
	interopDefaultTimeout  = 180 * time.Second
)

var interopCommand = command{
	name:    "interop",
	summary: "run one side of a libp2p test-plans ping test (both contracts)",
	help: `
Implements both contracts of the libp2p interop runners; the environment
says which. The unified one (libp2p/unified-testing) uses uppercase
variables:

  TRANSPORT          tcp (the only one Concord has)
  SECURE_CHANNEL     noise or tls
  MUXER              yamux
  IS_DIALER          true or false
  TEST_KEY           namespace of the Redis key
  REDIS_ADDR         Redis server (default transport-redis:6379)
  LISTENER_IP        address the listener binds (default 0.0.0.0)
  TEST_TIMEOUT_SECS  bound on the whole test (default 180)
  DEBUG              true: connection events on stderr, as -v logs them

The listener DELs and RPUSHes its multiaddr to the Redis list
"<TEST_KEY>_listener_multiaddr"; the dialer prints YAML on stdout:

  latency:
    handshake_plus_one_rtt: 5.011
    ping_rtt: 0.599
    unit: ms

The older transport-interop one (libp2p/test-plans) uses lowercase
variables: transport, security, muxer, is_dialer, ip (default 0.0.0.0),
redis_addr (default redis:6379), test_timeout_seconds (default 180); the
Redis list is "listenerAddr" and the dialer prints one JSON line,
{"handshakePlusOneRTTMillis":…,"pingRTTMilllis":…} (three l's, as the
contract spells it).

In both, the listener serves ping, publishes its address (on 0.0.0.0 its
first non-loopback interface address) and waits: until SIGINT or SIGTERM
(exit 0) or the timeout (exit 1). The dialer BLPOPs the address, connects,
pings once and prints its result. Times are milliseconds; diagnostics go to
stderr. A missing variable is a usage error (exit 2); a transport, security
or muxer Concord does not have exits 127.`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		return func(ctx context.Context, e *env, args []string) error {
			if err := exactArgs("interop", args); err != nil {
				return err
			}
			cfg, err := interopConfigFromEnv(e.getenv)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeoutCause(ctx, cfg.timeout, cfg.timeoutErr())
			defer cancel()
			if cfg.dialer {
				return interopDial(ctx, e, cfg)
			}
			return interopListen(ctx, e, cfg)
		}
	},
}

// interopContract names the variables of one contract.
type interopContract struct {
	name                               string
	transport, security, muxer, dialer string
	ip, redis, timeout, testKey        string
	defaultRedis                       string
	unified                            bool
}

var (
	legacyContract = interopContract{name: "transport-interop", transport: "transport", security: "security",
		muxer: "muxer", dialer: "is_dialer", ip: "ip", redis: "redis_addr", timeout: "test_timeout_seconds",
		defaultRedis: interopDefaultRedis}
	unifiedContract = interopContract{name: "unified", transport: "TRANSPORT", security: "SECURE_CHANNEL",
		muxer: "MUXER", dialer: "IS_DIALER", ip: "LISTENER_IP", redis: "REDIS_ADDR", timeout: "TEST_TIMEOUT_SECS",
		testKey: "TEST_KEY", defaultRedis: interopDefaultUnified, unified: true}
)

// required lists the variables a contract cannot do without.
func (c interopContract) required() []string {
	r := []string{c.transport, c.security, c.muxer, c.dialer}
	if c.unified {
		r = append(r, c.testKey)
	}
	return r
}

type interopConfig struct {
	contract interopContract
	security string
	dialer   bool
	ip       net.IP
	redis    string
	listKey  string
	timeout  time.Duration
	debug    bool // the unified contract's DEBUG=true: connection events on stderr
}

// observer logs the host's events on stderr (as -v does) when the runner
// asked for debug output; nil otherwise.
func (cfg interopConfig) observer(e *env) func(host.Event) {
	if !cfg.debug {
		return nil
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return func(ev host.Event) { logEvent(log, ev) }
}

// timeoutErr is the cause a context gets when the contract's timeout
// passes, naming the variable.
func (cfg interopConfig) timeoutErr() error {
	return fmt.Errorf("%w (%s)", errInteropTimeout, cfg.contract.timeout)
}

var errInteropTimeout = errors.New("the test timeout passed")

func interopConfigFromEnv(getenv func(string) string) (interopConfig, error) {
	set := func(c interopContract) (n int) {
		for _, v := range append(c.required(), c.ip, c.redis, c.timeout) {
			if getenv(v) != "" {
				n++
			}
		}
		return n
	}
	var c interopContract
	switch {
	case set(unifiedContract) > 0:
		c = unifiedContract
	case set(legacyContract) > 0:
		c = legacyContract
	default:
		return interopConfig{}, usageErrorf("interop: no test configuration in the environment: set %s (unified contract) or %s (transport-interop contract) (see 'concord interop -h')",
			strings.Join(unifiedContract.required(), ", "), strings.Join(legacyContract.required(), ", "))
	}
	var missing []string
	for _, v := range c.required() {
		if getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		return interopConfig{}, usageErrorf("interop: %s contract: %s not set (see 'concord interop -h')", c.name, strings.Join(missing, ", "))
	}
	cfg := interopConfig{contract: c, redis: c.defaultRedis, timeout: interopDefaultTimeout, listKey: interopListKey,
		debug: c.unified && getenv("DEBUG") == "true"}
	if c.unified {
		cfg.listKey = getenv(c.testKey) + interopUnifiedListTail
	}
	if t := getenv(c.transport); t != "tcp" {
		return cfg, fmt.Errorf("interop: %w: %s=%s (Concord has tcp)", errUnsupported, c.transport, t)
	}
	if m := getenv(c.muxer); m != "yamux" {
		return cfg, fmt.Errorf("interop: %w: %s=%s (Concord has yamux)", errUnsupported, c.muxer, m)
	}
	switch s := getenv(c.security); s {
	case "noise":
		cfg.security = host.SecurityNoise
	case "tls":
		cfg.security = host.SecurityTLS
	default:
		return cfg, fmt.Errorf("interop: %w: %s=%s (Concord has noise and tls)", errUnsupported, c.security, s)
	}
	switch d := getenv(c.dialer); d {
	case "true":
		cfg.dialer = true
	case "false":
	default:
		return cfg, usageErrorf("interop: %s=%s, want true or false (see 'concord interop -h')", c.dialer, d)
	}
	ip := getenv(c.ip)
	if ip == "" {
		ip = interopDefaultIP
	}
	if cfg.ip = net.ParseIP(ip); cfg.ip == nil {
		return cfg, usageErrorf("interop: %s=%s is not an IP address (see 'concord interop -h')", c.ip, ip)
	}
	if r := getenv(c.redis); r != "" {
		cfg.redis = r
	}
	if s := getenv(c.timeout); s != "" {
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || n <= 0 {
			return cfg, usageErrorf("interop: %s=%s is not a positive number of seconds (see 'concord interop -h')", c.timeout, s)
		}
		cfg.timeout = time.Duration(n * float64(time.Second))
	}
	return cfg, nil
}

func interopListen(ctx context.Context, e *env, cfg interopConfig) error {
	listen, err := tcp.FromTCPAddr(&net.TCPAddr{IP: cfg.ip})
	if err != nil {
		return fmt.Errorf("interop: listen address: %w", err)
	}
	h, err := host.New(host.Config{ListenAddrs: []ma.Multiaddr{listen}, Upgrader: securityOnly(cfg.security), Observer: cfg.observer(e)})
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
	if cfg.contract.unified {
		// A key left by an earlier run would hand the dialer a stale address.
		_, err = rc.Do(ctx, 0, "DEL", cfg.listKey)
	}
	if err == nil {
		_, err = rc.RPush(ctx, cfg.listKey, addr.String())
	}
	_ = rc.Close()
	if err != nil {
		return fmt.Errorf("interop: publishing the listen address: %w", err)
	}
	fmt.Fprintf(e.stderr, "listening on %s\n", addr)
	<-ctx.Done()
	if errors.Is(context.Cause(ctx), errInteropTimeout) {
		return fmt.Errorf("interop: listener: %w without the runner stopping it", context.Cause(ctx))
	}
	return nil
}

// publishableAddr is the listen address the dialer should use: on an
// unspecified IP, the first interface address that is not loopback (the
// runner's containers reach each other that way), else loopback.
func publishableAddr(h *host.Host) (ma.Multiaddr, error) {
	addrs := tcp.ExpandUnspecified(h.Addrs())
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
	addr, err := rc.BLPop(ctx, cfg.listKey, wait)
	_ = rc.Close()
	if err != nil {
		return fmt.Errorf("interop: waiting for the listener's address in Redis list %q at %s: %w", cfg.listKey, cfg.redis, err)
	}
	ai, err := peer.AddrInfoFromString(strings.TrimSpace(addr))
	if err != nil {
		return fmt.Errorf("interop: listener address %q: %w", addr, err)
	}
	h, err := host.New(host.Config{Upgrader: securityOnly(cfg.security), Observer: cfg.observer(e)})
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
	total := time.Since(start)
	if cfg.contract.unified {
		_, err = fmt.Fprintf(e.stdout, "# Measurements from dialer\nlatency:\n  handshake_plus_one_rtt: %.3f\n  ping_rtt: %.3f\n  unit: ms\n",
			millis(total), millis(rtt))
		return err
	}
	out, err := json.Marshal(interopResult{HandshakePlusOneRTTMillis: millis(total), PingRTTMillis: millis(rtt)})
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
