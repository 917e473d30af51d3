package simopen

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/simopen/simopentest"
	"github.com/multiformats/go-multistream"
)

// oneWay is the delay line's one-way delay d.
const oneWay = 10 * time.Millisecond

// timeToReply runs fa and fb at the same instant over a pipe that delays
// every write by d, each followed by the stub handshake, and returns how
// long the initiator took to have the responder's first handshake message
// (msg2) in hand, on the fake clock.
func timeToReply(t *testing.T, fa, fb side) time.Duration {
	t.Helper()
	var got time.Duration
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ca, cb := simopentest.Pipe(oneWay)
		defer ca.Close()
		defer cb.Close()
		start := time.Now()
		type out struct {
			role network.Role
			at   time.Duration
			err  error
		}
		run := func(f side, c net.Conn, ch chan<- out) {
			r, conn, err := f(ctx, c)
			if err == nil {
				err = handshake(r.Role, conn)
			}
			ch <- out{r.Role, time.Since(start), err}
		}
		cha, chb := make(chan out, 1), make(chan out, 1)
		go run(fa, ca, cha)
		go run(fb, cb, chb)
		a, b := <-cha, <-chb
		if a.err != nil || b.err != nil {
			t.Fatalf("errors: a %v, b %v", a.err, b.err)
		}
		if a.role == b.role {
			t.Fatalf("both %v", a.role)
		}
		got = a.at
		if b.role == network.RoleInitiator {
			got = b.at
		}
	})
	return got
}

// plainDialer is plain multistream-select as go-libp2p's upgrader does it
// (go-multistream SelectOneOf), the baseline a single simopen dial must
// match.
func plainDialer(protos []string) side {
	return func(_ context.Context, c net.Conn) (Result, net.Conn, error) {
		p, err := multistream.SelectOneOf(protos, c)
		return Result{Role: network.RoleInitiator, Protocol: p}, c, err
	}
}

// TestRoundTrips counts, in one-way delays d, when the initiator holds
// the responder's first handshake reply. The fake clock makes it exact.
func TestRoundTrips(t *testing.T) {
	noiseTLS := []string{"/noise", "/tls/1.0.0"}
	tlsNoise := []string{"/tls/1.0.0", "/noise"}
	plain := timeToReply(t, plainDialer(noiseTLS), acceptor(Config{Protocols: noiseTLS}))
	single := timeToReply(t, dialer(Config{Protocols: noiseTLS}), acceptor(Config{Protocols: noiseTLS}))
	sync := timeToReply(t, dialer(Config{Protocols: noiseTLS, Rand: nonce(9)}), dialer(Config{Protocols: tlsNoise, Rand: nonce(3)}))
	piped := timeToReply(t, dialer(Config{Protocols: noiseTLS, Rand: nonce(9)}), dialer(Config{Protocols: noiseTLS, Rand: nonce(3)}))
	t.Logf("time to the responder's reply: plain multistream-select %v, single dial %v, election %v, election with pipelined proposal %v (d = %v)",
		plain, single, sync, piped, oneWay)
	for _, c := range []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{"plain multistream-select", plain, 4 * oneWay}, // header+proposal, echo, msg1, msg2
		{"single dial", single, plain},                  // no extra round trip
		{"election", sync, single + 2*oneWay},           // select, then initiator+proposal
		{"election, pipelined", piped, single},          // the held tokens ride with msg1
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestPipelinedFirstReadFlushes: a handshake that reads before writing
// still sends the held tokens, instead of waiting forever.
func TestPipelinedFirstReadFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := simopentest.Pipe(oneWay)
		defer ca.Close()
		defer cb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			_, c, err := Dial(ctx, cb, Config{Protocols: []string{"/noise"}, Rand: nonce(1)})
			if err == nil {
				_, err = c.Write([]byte("hi"))
			}
			errc <- err
		}()
		res, c, err := Dial(ctx, ca, Config{Protocols: []string{"/noise"}, Rand: nonce(2)})
		if err != nil || !res.Pipelined {
			t.Fatalf("Dial: %+v, %v; want a pipelined initiator", res, err)
		}
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
			t.Fatalf("read %q, %v; want \"hi\"", buf, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("responder: %v", err)
		}
	})
}

// TestPipelinedRefusalIsTyped: a peer that proposed our protocol and then
// refuses it fails the initiator's first Read with a ProtocolError, and
// every later Read with the same error.
func TestPipelinedRefusalIsTyped(t *testing.T) {
	ca, cb := simopentest.Pipe(0)
	defer ca.Close()
	defer cb.Close()
	cb.Write(encodeTokens(ProtocolHeader, ProtocolID, "/noise"))
	cb.Write(encodeTokens(formatSelect(1)))
	cb.Write(encodeTokens(TokenResponder, TokenNA))
	res, c, err := Dial(context.Background(), ca, Config{Protocols: []string{"/noise"}, Rand: nonce(2)})
	if err != nil || !res.Pipelined {
		t.Fatalf("Dial: %+v, %v; want a pipelined initiator", res, err)
	}
	if _, err := c.Write([]byte("msg1")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		var pe *ProtocolError
		if _, err := c.Read(make([]byte, 8)); !errors.As(err, &pe) || pe.Got != TokenNA {
			t.Errorf("read %d: err %v, want a ProtocolError with Got \"na\"", i, err)
		}
	}
	if n := ca.Writes(); n != 3 {
		t.Errorf("initiator made %d writes, want 3 (opening, select, initiator+proposal+msg1)", n)
	}
	ca.Close()
	got, _ := io.ReadAll(cb)
	want := append(encodeTokens(ProtocolHeader, ProtocolID, "/noise", formatSelect(2), TokenInitiator, "/noise"), "msg1"...)
	if string(got) != string(want) {
		t.Errorf("initiator wrote %q, want %q", got, want)
	}
}
