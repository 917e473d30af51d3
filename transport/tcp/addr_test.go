package tcp

import (
	"errors"
	"net"
	"slices"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestToTCPAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // net.TCPAddr.String(); "" means ErrUnsupportedAddr
		ipv6 bool
	}{
		{"/ip4/127.0.0.1/tcp/4001", "127.0.0.1:4001", false},
		{"/ip4/0.0.0.0/tcp/0", "0.0.0.0:0", false},
		{"/ip4/10.1.2.3/tcp/65535", "10.1.2.3:65535", false},
		{"/ip6/::1/tcp/4001", "[::1]:4001", true},
		{"/ip6/::/tcp/0", "[::]:0", true},
		{"/ip6zone/eth0/ip6/fe80::1/tcp/80", "[fe80::1%eth0]:80", true},
		{"/ip6/::ffff:10.0.0.1/tcp/1", "", false},
		{"/ip6zone/eth0/tcp/1", "", false},
		{"/ip4/127.0.0.1/udp/1", "", false},
		{"/dns/example.com/tcp/1", "", false},
		{"/ip4/127.0.0.1/tcp/1/ws", "", false},
		{"/ip4/127.0.0.1", "", false},
		{"/tcp/1", "", false},
	} {
		m, err := ma.NewMultiaddr(tc.in)
		if err != nil {
			t.Fatalf("test multiaddr %s: %v", tc.in, err)
		}
		a, v6, err := ToTCPAddr(m)
		if tc.want == "" {
			if !errors.Is(err, ErrUnsupportedAddr) {
				t.Errorf("ToTCPAddr(%s) = %v, %v; want ErrUnsupportedAddr", tc.in, a, err)
			}
			continue
		}
		if err != nil || a.String() != tc.want || v6 != tc.ipv6 {
			t.Errorf("ToTCPAddr(%s) = %v, %v, %v; want %s, %v, nil", tc.in, a, v6, err, tc.want, tc.ipv6)
			continue
		}
		back, err := FromTCPAddr(a)
		if err != nil || !back.Equal(m) {
			t.Errorf("FromTCPAddr(%v) = %s, %v; want %s", a, back, err, tc.in)
		}
	}
	if _, _, err := ToTCPAddr(nil); !errors.Is(err, ErrUnsupportedAddr) {
		t.Errorf("ToTCPAddr(nil) err = %v, want ErrUnsupportedAddr", err)
	}
	if _, err := FromTCPAddr(nil); !errors.Is(err, ErrUnsupportedAddr) {
		t.Errorf("FromTCPAddr(nil) err = %v, want ErrUnsupportedAddr", err)
	}
	if m, err := FromTCPAddr(&net.TCPAddr{IP: net.IP{1, 2, 3}, Port: 1}); !errors.Is(err, ErrUnsupportedAddr) {
		t.Errorf("FromTCPAddr(3-byte IP) = %s, %v; want ErrUnsupportedAddr", m, err)
	}
}

// FuzzToTCPAddr feeds arbitrary multiaddr bytes. Invariants: conversion
// never panics; it succeeds only for ip4/ip6(+zone)/tcp shapes; a success
// round-trips to the same bytes through FromTCPAddr, with the family
// matching the first IP component.
func FuzzToTCPAddr(f *testing.F) {
	for _, s := range []string{
		"/ip4/127.0.0.1/tcp/4001", "/ip6/::1/tcp/0", "/ip6zone/x/ip6/fe80::1/tcp/9",
		"/ip4/1.2.3.4/udp/1", "/dns4/a/tcp/1", "/ip6/::ffff:1.2.3.4/tcp/5",
	} {
		f.Add(ma.StringCast(s).Bytes())
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return
		}
		a, v6, err := ToTCPAddr(m)
		if err != nil {
			if !errors.Is(err, ErrUnsupportedAddr) {
				t.Fatalf("ToTCPAddr(%s) error %v does not wrap ErrUnsupportedAddr", m, err)
			}
			return
		}
		comps := []ma.Component(m)
		if comps[0].Code() == ma.P_IP6ZONE {
			comps = comps[1:]
		}
		if len(comps) != 2 || comps[1].Code() != ma.P_TCP || v6 != (comps[0].Code() == ma.P_IP6) {
			t.Fatalf("ToTCPAddr accepted %s (v6=%v)", m, v6)
		}
		if a.Port < 0 || a.Port > 65535 || (v6 && a.IP.To4() != nil) || (!v6 && a.IP.To4() == nil) {
			t.Fatalf("ToTCPAddr(%s) = %v, v6=%v: inconsistent", m, a, v6)
		}
		back, err := FromTCPAddr(a)
		if err != nil {
			t.Fatalf("FromTCPAddr(%v): %v", a, err)
		}
		if !back.Equal(m) {
			t.Fatalf("round trip %s -> %v -> %s", m, a, back)
		}
	})
}

func TestExpandUnspecified(t *testing.T) {
	ifaddrs := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.2"), net.ParseIP("::1"),
		net.ParseIP("fe80::1"), net.ParseIP("2001:db8::5"), net.ParseIP("169.254.1.1")}
	for _, tc := range []struct {
		in, want []string
		ifaddrs  []net.IP
	}{
		{[]string{"/ip4/0.0.0.0/tcp/4001"}, []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/10.0.0.2/tcp/4001"}, ifaddrs},
		{[]string{"/ip6/::/tcp/7"}, []string{"/ip6/::1/tcp/7", "/ip6/2001:db8::5/tcp/7"}, ifaddrs},
		{[]string{"/ip4/127.0.0.1/tcp/1", "/ip4/0.0.0.0/tcp/2", "/dns/example.com/tcp/3"},
			[]string{"/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/2", "/ip4/10.0.0.2/tcp/2", "/dns/example.com/tcp/3"}, ifaddrs},
		// No interface of the family: the unspecified address stays.
		{[]string{"/ip6/::/tcp/7"}, []string{"/ip6/::/tcp/7"}, []net.IP{net.ParseIP("127.0.0.1")}},
		{[]string{"/ip4/0.0.0.0/tcp/9"}, []string{"/ip4/0.0.0.0/tcp/9"}, nil},
	} {
		var in []ma.Multiaddr
		for _, s := range tc.in {
			in = append(in, ma.StringCast(s))
		}
		var got []string
		for _, a := range expandUnspecified(in, tc.ifaddrs) {
			got = append(got, a.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("expandUnspecified(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestExpandUnspecifiedMachine: on this machine 0.0.0.0 becomes addresses
// that include loopback with the same port, none of them unspecified.
func TestExpandUnspecifiedMachine(t *testing.T) {
	got := ExpandUnspecified([]ma.Multiaddr{ma.StringCast("/ip4/0.0.0.0/tcp/4001")})
	if !slices.ContainsFunc(got, ma.StringCast("/ip4/127.0.0.1/tcp/4001").Equal) {
		t.Errorf("ExpandUnspecified(0.0.0.0) = %v, lacks /ip4/127.0.0.1/tcp/4001", got)
	}
	for _, a := range got {
		if ta, _, err := ToTCPAddr(a); err != nil || ta.IP.IsUnspecified() || ta.Port != 4001 {
			t.Errorf("ExpandUnspecified(0.0.0.0) gave %v", a)
		}
	}
}
