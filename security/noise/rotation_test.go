package noise

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security/internal/sectest"
)

func TestStaticKeyRotation(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	tr := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{StaticKeyLifetime: time.Minute, Now: clock})
	first, err := tr.statics.get()
	if err != nil {
		t.Fatal(err)
	}
	advance(59 * time.Second)
	if s, _ := tr.statics.get(); s != first {
		t.Errorf("static key replaced before its lifetime ended")
	}
	advance(time.Second)
	second, _ := tr.statics.get()
	if second == first || bytes.Equal(second.pub, first.pub) {
		t.Fatalf("static key not replaced once its lifetime ended")
	}
	ok, err := sectest.Key(t, peer.Ed25519, 0).Public().Verify(append([]byte(staticKeyPrefix), second.pub...), second.identitySig)
	if err != nil || !ok {
		t.Errorf("signature of the new static key does not verify: %v, %v", ok, err)
	}
}

func TestFreshStaticKeyPerHandshake(t *testing.T) {
	tr := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{StaticKeyLifetime: -1})
	a, _ := tr.statics.get()
	b, _ := tr.statics.get()
	if bytes.Equal(a.pub, b.pub) {
		t.Errorf("negative lifetime reused the static key")
	}
}

func TestDefaultLifetime(t *testing.T) {
	tr := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{})
	if tr.statics.lifetime != DefaultStaticKeyLifetime {
		t.Errorf("lifetime = %v, want %v", tr.statics.lifetime, DefaultStaticKeyLifetime)
	}
}

// TestECDHMatchesFlynn: the crypto/ecdh DH function computes what
// flynn/noise's DH25519 computes, for the kept keys and for others.
func TestECDHMatchesFlynn(t *testing.T) {
	d := &ecdhFunc{}
	kp, err := d.GenerateKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := (&ecdhFunc{}).GenerateKeypair(nil)
	for _, priv := range [][]byte{kp.Private, other.Private} {
		got, err := d.DH(priv, kp.Public)
		if err != nil {
			t.Fatal(err)
		}
		want, err := flynnDH25519().DH(priv, kp.Public)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("DH = %x, flynn/noise gives %x", got, want)
		}
	}
	if _, err := d.DH(kp.Private, make([]byte, 32)); err == nil {
		t.Errorf("DH with the all-zero (low-order) point succeeded, want an error")
	}
}
