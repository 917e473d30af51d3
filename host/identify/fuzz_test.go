package identify

import (
	"bytes"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/concordp2p/concord/peer"
)

// FuzzRead feeds arbitrary streams to Read. It must not panic; what it
// accepts must stay within the limits and survive Write and Read again
// unchanged, and Check must not panic on it.
func FuzzRead(f *testing.F) {
	k, err := peer.GenerateKey(peer.Ed25519, bytes.NewReader(make([]byte, 64)))
	if err != nil {
		f.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	pub, _ := peer.MarshalPublicKey(k.Public())
	rec, err := SealRecord(k, PeerRecord{PeerID: id, Seq: 1, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}})
	if err != nil {
		f.Fatal(err)
	}
	var full bytes.Buffer
	_ = Write(&full, Message{ProtocolVersion: "ipfs/0.1.0", AgentVersion: "a", PublicKey: pub,
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}, ObservedAddr: ma.StringCast("/ip4/127.0.0.1/tcp/2"),
		Protocols: []string{ID, PushID}, SignedPeerRecord: rec})
	f.Add(full.Bytes())
	f.Add(protowire.AppendBytes(nil, Message{AgentVersion: "x"}.Marshal()))
	f.Add([]byte{0x00})
	f.Add([]byte{0x81, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := Read(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(m.Protocols) > MaxProtocols || len(m.ListenAddrs) > MaxAddrs {
			t.Fatalf("accepted %d protocols, %d addresses", len(m.Protocols), len(m.ListenAddrs))
		}
		_, _ = Check(m, id)
		var buf bytes.Buffer
		if err := Write(&buf, m); err != nil {
			return // a merge of several messages can exceed one message's limit
		}
		again, err := Read(&buf)
		if err != nil {
			t.Fatalf("Read(Write(m)): %v", err)
		}
		// A list whose every address was dropped is present but empty, and
		// an empty list cannot be written.
		lists := HasListenAddrs | HasProtocols
		if !equalMessages(m, again) || (again.Has|m.present())&^lists != (m.Has|m.present())&^lists {
			t.Fatalf("Read(Write(m)) = %+v, want %+v", again, m)
		}
	})
}

// FuzzOpenRecord: OpenRecord must not panic and must refuse what was not
// signed by the key.
func FuzzOpenRecord(f *testing.F) {
	k, err := peer.GenerateKey(peer.Ed25519, bytes.NewReader(make([]byte, 64)))
	if err != nil {
		f.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	rec, err := SealRecord(k, PeerRecord{PeerID: id, Seq: 1, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec)
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := OpenRecord(in, id)
		if err == nil && r.PeerID != id {
			t.Fatalf("opened a record of %s", r.PeerID)
		}
	})
}
