// Command gopeer is the go-libp2p reference side of interop/contract's
// tests: one side of a libp2p interop runner's ping test, in the unified
// contract (uppercase variables, list <TEST_KEY>_listener_multiaddr, YAML)
// when TRANSPORT is set, else the older transport-interop one (lowercase
// variables, list listenerAddr, one JSON line). It exists for the tests;
// the runners' own go-libp2p images are not reachable from here.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	lpping "github.com/libp2p/go-libp2p/p2p/protocol/ping"
	lpnoise "github.com/libp2p/go-libp2p/p2p/security/noise"
	lptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

type config struct {
	unified                         bool
	transport, security, muxer, dia string
	ip, redis, key                  string
}

func fromEnv() config {
	if os.Getenv("TRANSPORT") != "" {
		return config{unified: true, transport: os.Getenv("TRANSPORT"), security: os.Getenv("SECURE_CHANNEL"),
			muxer: os.Getenv("MUXER"), dia: os.Getenv("IS_DIALER"), ip: os.Getenv("LISTENER_IP"),
			redis: os.Getenv("REDIS_ADDR"), key: os.Getenv("TEST_KEY") + "_listener_multiaddr"}
	}
	return config{transport: os.Getenv("transport"), security: os.Getenv("security"), muxer: os.Getenv("muxer"),
		dia: os.Getenv("is_dialer"), ip: os.Getenv("ip"), redis: os.Getenv("redis_addr"), key: "listenerAddr"}
}

func main() {
	c := fromEnv()
	if c.transport != "tcp" || c.muxer != "yamux" || (c.security != "noise" && c.security != "tls") {
		fmt.Fprintf(os.Stderr, "gopeer: unsupported: %s %s %s\n", c.transport, c.security, c.muxer)
		os.Exit(127)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var err error
	if c.dia == "true" {
		err = dial(ctx, c)
	} else {
		err = listen(ctx, c)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gopeer: %v\n", err)
		os.Exit(1)
	}
}

func options(c config, listen string) []libp2p.Option {
	opts := []libp2p.Option{
		libp2p.Transport(lptcp.NewTCPTransport),
		libp2p.Muxer(lpyamux.ID, lpyamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	}
	if c.security == "tls" {
		opts = append(opts, libp2p.Security(lptls.ID, lptls.New))
	} else {
		opts = append(opts, libp2p.Security(lpnoise.ID, lpnoise.New))
	}
	if listen == "" {
		return append(opts, libp2p.NoListenAddrs)
	}
	return append(opts, libp2p.ListenAddrStrings(listen))
}

func listen(ctx context.Context, c config) error {
	ip := c.ip
	if ip == "" {
		ip = "0.0.0.0"
	}
	h, err := libp2p.New(options(c, "/ip4/"+ip+"/tcp/0")...)
	if err != nil {
		return err
	}
	defer h.Close()
	var addr ma.Multiaddr
	for _, a := range h.Addrs() {
		if v, err := a.ValueForProtocol(ma.P_IP4); err == nil && (addr == nil || !strings.HasPrefix(v, "127.")) {
			addr = a
		}
	}
	if addr == nil {
		return errors.New("no IPv4 listen address")
	}
	full := addr.String() + "/p2p/" + h.ID().String()
	r, err := dialRedis(ctx, c.redis)
	if err != nil {
		return err
	}
	if c.unified {
		if _, err := r.do("DEL", c.key); err != nil {
			return err
		}
	}
	if _, err := r.do("RPUSH", c.key, full); err != nil {
		return err
	}
	_ = r.conn.Close()
	fmt.Fprintf(os.Stderr, "listening on %s\n", full)
	<-ctx.Done()
	return nil
}

func dial(ctx context.Context, c config) error {
	r, err := dialRedis(ctx, c.redis)
	if err != nil {
		return err
	}
	v, err := r.do("BLPOP", c.key, "180")
	_ = r.conn.Close()
	if err != nil {
		return err
	}
	if len(v) != 2 {
		return errors.New("BLPOP timed out")
	}
	ai, err := lppeer.AddrInfoFromString(v[1])
	if err != nil {
		return err
	}
	h, err := libp2p.New(options(c, "")...)
	if err != nil {
		return err
	}
	defer h.Close()
	start := time.Now()
	if err := h.Connect(ctx, *ai); err != nil {
		return err
	}
	res := <-lpping.Ping(ctx, h, ai.ID)
	if res.Error != nil {
		return res.Error
	}
	total := time.Since(start)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	if c.unified {
		fmt.Printf("latency:\n  handshake_plus_one_rtt: %.3f\n  ping_rtt: %.3f\n  unit: ms\n", ms(total), ms(res.RTT))
		return nil
	}
	out, _ := json.Marshal(map[string]float64{"handshakePlusOneRTTMillis": ms(total), "pingRTTMilllis": ms(res.RTT)})
	fmt.Println(string(out))
	return nil
}

// redis is a RESP client with just what the contracts use: commands whose
// replies are integers, nil or flat arrays of bulk strings.
type redis struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialRedis(ctx context.Context, addr string) (*redis, error) {
	if addr == "" {
		addr = "redis:6379"
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &redis{conn: conn, r: bufio.NewReader(conn)}, nil
}

func (c *redis) do(args ...string) ([]string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.conn.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	line, err := c.line()
	if err != nil {
		return nil, err
	}
	switch line[0] {
	case ':', '+':
		return nil, nil
	case '-':
		return nil, errors.New("redis: " + line[1:])
	case '*':
		n, _ := strconv.Atoi(line[1:])
		var out []string
		for range n {
			h, err := c.line()
			if err != nil {
				return nil, err
			}
			size, _ := strconv.Atoi(h[1:])
			buf := make([]byte, size+2)
			if _, err := io.ReadFull(c.r, buf); err != nil {
				return nil, err
			}
			out = append(out, string(buf[:size]))
		}
		return out, nil
	}
	return nil, fmt.Errorf("redis: unexpected reply %q", line)
}

func (c *redis) line() (string, error) {
	l, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	l = strings.TrimRight(l, "\r\n")
	if l == "" {
		return "", errors.New("redis: empty reply line")
	}
	return l, nil
}
