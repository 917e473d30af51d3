package noise

import (
	"sync"
	"testing"
	"testing/synctest"
)

// TestEphemeralPoolUnique: keys taken concurrently, from the pool and
// generated inline, are never handed out twice, and the pool refills to
// its size in the background.
func TestEphemeralPoolUnique(t *testing.T) {
	synctest.Test(t, testEphemeralPoolUnique)
}

func testEphemeralPoolUnique(t *testing.T) {
	p := newEphemeralPool()
	const takers, each = 8, 25
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range takers {
		wg.Go(func() {
			for range each {
				k, err := p.take()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[string(k.Bytes())] {
					t.Errorf("key %x handed out twice", k.PublicKey().Bytes())
				}
				seen[string(k.Bytes())] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != takers*each {
		t.Errorf("%d distinct keys, want %d", len(seen), takers*each)
	}
	// The refill is asynchronous: wait until its goroutine has ended.
	synctest.Wait()
	if len(p.keys) != ephemeralPoolSize || p.filling.Load() {
		t.Fatalf("pool holds %d keys (refilling: %v) once idle, want %d and done", len(p.keys), p.filling.Load(), ephemeralPoolSize)
	}
	// A pooled key is handed out, never one seen before.
	k, err := p.take()
	if err != nil {
		t.Fatal(err)
	}
	if seen[string(k.Bytes())] {
		t.Errorf("pooled key %x was handed out before", k.PublicKey().Bytes())
	}
}

// TestHandshakeUsesEphemeralPool: a handshake takes its ephemeral key from
// the Transport's pool, and never the same one as another handshake.
func TestHandshakeUsesEphemeralPool(t *testing.T) {
	synctest.Test(t, testHandshakeUsesEphemeralPool)
}

func testHandshakeUsesEphemeralPool(t *testing.T) {
	for range 5 {
		d := &ecdhFunc{ephemerals: newEphemeralPool()}
		k, err := x25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		d.ephemerals.keys <- k
		kp, err := d.GenerateKeypair(nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(kp.Public) != string(k.PublicKey().Bytes()) {
			t.Fatalf("ephemeral %x, want the pooled %x", kp.Public, k.PublicKey().Bytes())
		}
		kp2, err := d.GenerateKeypair(nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(kp2.Public) == string(kp.Public) {
			t.Fatal("the same ephemeral key was handed out twice")
		}
		// Two keys taken: the pool keeps one ready.
		synctest.Wait()
		if n := len(d.ephemerals.keys); n != 1 {
			t.Fatalf("pool refilled to %d keys after two takes, want 1", n)
		}
	}
}

// TestEphemeralPoolGrowsWithUse: a pool taken from once generates nothing
// ahead (a one-handshake Transport wastes no key); its target grows by one
// per take up to ephemeralPoolSize.
func TestEphemeralPoolGrowsWithUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newEphemeralPool()
		for i := 1; i <= ephemeralPoolSize+3; i++ {
			if _, err := p.take(); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if n, want := len(p.keys), min(i-1, ephemeralPoolSize); n != want {
				t.Fatalf("after %d takes the pool holds %d keys, want %d", i, n, want)
			}
		}
	})
}
