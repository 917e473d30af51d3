package noise

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"sync/atomic"
)

// ephemeralPoolSize is how many ephemeral X25519 key pairs a Transport keeps
// generated in advance.
const ephemeralPoolSize = 4

// ephemeralPool generates ephemeral key pairs ahead of the handshakes that
// use them, so that key generation (one X25519 scalar multiplication, about
// a tenth of a handshake's CPU) leaves the handshake's critical path when
// the CPU has idle time between handshakes. Each key is handed out once:
// a receive from the channel is exclusive, and a key is never put back.
//
// The pool refills itself with one goroutine at a time, started when a key
// is taken and ending once the pool holds its target; an unused Transport
// runs no goroutine. The target grows with use: one key fewer than have
// been taken, up to ephemeralPoolSize. A Transport that makes a single
// handshake (a client with a new identity per connection) thus generates
// no key that is never used; filling to the full size after the first
// handshake cost such a client four wasted scalar multiplications, about
// a tenth of its CPU per connection (interop/bench -mode newid). A
// handshake that finds the pool empty generates its key itself. Safe for
// concurrent use.
type ephemeralPool struct {
	keys    chan *ecdh.PrivateKey
	filling atomic.Bool
	taken   atomic.Int64
}

// target is how many keys the pool keeps ready after taken takes.
func (p *ephemeralPool) target() int {
	return int(min(int64(cap(p.keys)), p.taken.Load()-1))
}

func newEphemeralPool() *ephemeralPool {
	return &ephemeralPool{keys: make(chan *ecdh.PrivateKey, ephemeralPoolSize)}
}

// take returns a new key pair, from the pool when it has one.
func (p *ephemeralPool) take() (*ecdh.PrivateKey, error) {
	p.taken.Add(1)
	defer p.refill()
	select {
	case k := <-p.keys:
		return k, nil
	default:
	}
	k, err := x25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating X25519 key: %w", err)
	}
	return k, nil
}

// refill starts the refilling goroutine unless it is running.
func (p *ephemeralPool) refill() {
	if len(p.keys) >= p.target() || !p.filling.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer p.filling.Store(false)
		for len(p.keys) < p.target() {
			k, err := x25519.GenerateKey(rand.Reader)
			if err != nil {
				return // take generates its own key and reports the error
			}
			select {
			case p.keys <- k:
			default:
				return
			}
		}
	}()
}
