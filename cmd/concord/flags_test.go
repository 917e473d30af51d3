package main

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/concordp2p/concord/host"
)

// TestConfigFlagsMapOntoHostConfig: each host flag sets exactly its field
// of host.Config, and no flag leaves every field zero (the defaults).
func TestConfigFlagsMapOntoHostConfig(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg := configFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if cfg.Upgrader.Security.Protocols != nil || cfg.Upgrader.HandshakeTimeout != 0 || cfg.TCP.ConnectTimeout != 0 {
		t.Fatalf("no flags: %+v, want the zero Config", *cfg)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg = configFlags(fs)
	err := fs.Parse([]string{
		"-security", "tls,noise", "-handshake-timeout", "3s", "-connect-timeout", "2s",
		"-user-timeout", "7s", "-keepalive", "1s", "-ping-timeout", "1500ms",
		"-max-inbound-upgrades", "9", "-max-inbound-upgrades-per-ip", "4", "-share-port",
		"-max-inbound-upgrades-per-subnet", "5", "-first-byte-timeout", "250ms",
		"-max-inbound-probation", "6", "-max-inbound-probation-per-ip", "2",
	})
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Upgrader
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"security", u.Security.Protocols[0] + "," + u.Security.Protocols[1], host.SecurityTLS + "," + host.SecurityNoise},
		{"handshake-timeout", u.HandshakeTimeout, 3 * time.Second},
		{"connect-timeout", cfg.TCP.ConnectTimeout, 2 * time.Second},
		{"user-timeout", cfg.TCP.UserTimeout, 7 * time.Second},
		{"keepalive", u.Muxer.Yamux.KeepAliveInterval, time.Second},
		{"ping-timeout", u.Muxer.Yamux.PingTimeout, 1500 * time.Millisecond},
		{"max-inbound-upgrades", u.MaxInboundUpgrades, 9},
		{"max-inbound-upgrades-per-ip", u.MaxInboundUpgradesPerIP, 4},
		{"share-port", cfg.TCP.SharePort, true},
		{"max-inbound-upgrades-per-subnet", u.MaxInboundUpgradesPerSubnet, 5},
		{"first-byte-timeout", u.FirstByteTimeout, 250 * time.Millisecond},
		{"max-inbound-probation", u.MaxInboundProbation, 6},
		{"max-inbound-probation-per-ip", u.MaxInboundProbationPerIP, 2},
	} {
		if c.got != c.want {
			t.Errorf("-%s: field is %v, want %v", c.name, c.got, c.want)
		}
	}
	h, err := host.New(*cfg)
	if err != nil {
		t.Fatalf("host.New with every flag set: %v", err)
	}
	_ = h.Close()
}
