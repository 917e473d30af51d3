package peer

import (
	"errors"
	"testing"

	"github.com/mr-tron/base58"
	ma "github.com/multiformats/go-multiaddr"
)

func TestAddrInfoFromString(t *testing.T) {
	id, err := Decode(specEd25519ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in        string
		wantAddrs []string
	}{
		{"/ip4/127.0.0.1/tcp/4001/p2p/" + specEd25519ID, []string{"/ip4/127.0.0.1/tcp/4001"}},
		{"/ip6/::1/tcp/4001/p2p/" + id.CID(), []string{"/ip6/::1/tcp/4001"}},
		{"/dns4/example.com/tcp/4001/p2p/" + specEd25519ID, []string{"/dns4/example.com/tcp/4001"}},
		{"/p2p/" + specEd25519ID, nil},
	} {
		ai, err := AddrInfoFromString(tc.in)
		if err != nil {
			t.Errorf("AddrInfoFromString(%s): %v", tc.in, err)
			continue
		}
		if ai.ID != id {
			t.Errorf("AddrInfoFromString(%s).ID = %s, want %s", tc.in, ai.ID, id)
		}
		var got []string
		for _, a := range ai.Addrs {
			got = append(got, a.String())
		}
		if len(got) != len(tc.wantAddrs) || (len(got) == 1 && got[0] != tc.wantAddrs[0]) {
			t.Errorf("AddrInfoFromString(%s).Addrs = %v, want %v", tc.in, got, tc.wantAddrs)
		}
		p2p, err := ai.P2pAddrs()
		if err != nil || len(p2p) != 1 {
			t.Fatalf("P2pAddrs() = %v, %v; want one address", p2p, err)
		}
		// The canonical text form uses base58btc, whatever the input used.
		back, err := AddrInfoFromP2pAddr(p2p[0])
		if err != nil || back.ID != id || back.String() != ai.String() {
			t.Errorf("P2pAddrs round trip: got %v, %v; want %v", back, err, ai)
		}
	}
}

func TestAddrInfoErrors(t *testing.T) {
	notAKey := base58.Encode(append([]byte{0x00, 0x05}, "hello"...))
	for _, s := range []string{
		"/ip4/127.0.0.1/tcp/4001",
		"/p2p/" + notAKey,
		"/ip4/127.0.0.1/tcp/4001/p2p/" + notAKey,
		"/p2p/" + specEd25519ID + "/tcp/1",
	} {
		if _, err := AddrInfoFromString(s); !errors.Is(err, ErrInvalidID) {
			t.Errorf("AddrInfoFromString(%s): got %v, want ErrInvalidID", s, err)
		}
	}
	if _, err := AddrInfoFromString("not a multiaddr"); err == nil {
		t.Errorf("AddrInfoFromString(garbage): got nil error")
	}
	if _, err := AddrInfoFromP2pAddr(nil); !errors.Is(err, ErrInvalidID) {
		t.Errorf("AddrInfoFromP2pAddr(nil): got %v, want ErrInvalidID", err)
	}
}

func TestAddrInfoP2pAddrs(t *testing.T) {
	id, _ := Decode(specSHA256ID)
	ai := AddrInfo{ID: id, Addrs: []ma.Multiaddr{
		ma.StringCast("/ip4/192.0.2.1/tcp/1"),
		ma.StringCast("/ip6/2001:db8::1/tcp/2"),
	}}
	got, err := ai.P2pAddrs()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/ip4/192.0.2.1/tcp/1/p2p/" + specSHA256ID, "/ip6/2001:db8::1/tcp/2/p2p/" + specSHA256ID}
	if len(got) != len(want) {
		t.Fatalf("P2pAddrs() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("P2pAddrs()[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	if got, want := ai.String(), "{"+specSHA256ID+": [/ip4/192.0.2.1/tcp/1 /ip6/2001:db8::1/tcp/2]}"; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
	if _, err := (AddrInfo{ID: "bogus"}).P2pAddrs(); !errors.Is(err, ErrInvalidID) {
		t.Errorf("P2pAddrs with an invalid ID: got %v, want ErrInvalidID", err)
	}
}
