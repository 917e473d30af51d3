package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpprotocol "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/host/ping"
	"github.com/concordp2p/concord/peer"
)

// pingCompare (-ping ADDR): a Concord host and a go-libp2p v0.52 host
// (libp2p.New's defaults) each connect to the listener at ADDR (say a
// `concord listen`) and send count pings of 32 bytes on one
// /ipfs/ping/1.0.0 stream, one every interval, as `concord ping` does;
// the two dialers alternate ping by ping, so both see the same load. It
// prints each dialer's p50 and mean round trip and their ratio.
func pingCompare(addr string, count int, interval time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(count+10)*(interval+time.Second))
	defer cancel()

	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return err
	}
	ch, err := host.New(host.Config{})
	if err != nil {
		return err
	}
	defer ch.Close()
	if _, err := ch.Connect(ctx, *ai); err != nil {
		return fmt.Errorf("concord: %w", err)
	}
	cs, err := ch.NewStream(ctx, ai.ID, ping.ID)
	if err != nil {
		return fmt.Errorf("concord: %w", err)
	}
	defer cs.Close()

	lai, err := lppeer.AddrInfoFromString(addr)
	if err != nil {
		return err
	}
	lh, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		return err
	}
	defer lh.Close()
	if err := lh.Connect(ctx, *lai); err != nil {
		return fmt.Errorf("go-libp2p: %w", err)
	}
	ls, err := lh.NewStream(ctx, lai.ID, lpprotocol.ID(ping.ID))
	if err != nil {
		return fmt.Errorf("go-libp2p: %w", err)
	}
	defer ls.Close()

	once := func(rw io.ReadWriter) (time.Duration, error) {
		var out, in [32]byte
		rand.Read(out[:])
		start := time.Now()
		if _, err := rw.Write(out[:]); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(rw, in[:]); err != nil {
			return 0, err
		}
		d := time.Since(start)
		if in != out {
			return 0, fmt.Errorf("ping answered with other bytes")
		}
		return d, nil
	}
	var cl, gl []float64
	next := time.Now()
	for i := range count {
		// Alternate which dialer goes first.
		for j := range 2 {
			time.Sleep(time.Until(next))
			next = next.Add(interval / 2)
			if (i+j)%2 == 0 {
				d, err := once(cs)
				if err != nil {
					return fmt.Errorf("concord ping: %w", err)
				}
				cl = append(cl, float64(d.Microseconds()))
			} else {
				d, err := once(ls)
				if err != nil {
					return fmt.Errorf("go-libp2p ping: %w", err)
				}
				gl = append(gl, float64(d.Microseconds()))
			}
		}
	}
	mean := func(xs []float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	cm, gm := mean(cl), mean(gl)
	cp, gp := percentile(cl, 50), percentile(gl, 50)
	fmt.Printf("# ping %s: %d pings each, one every %v per dialer, load average %s\n", addr, count, interval, loadAvg())
	fmt.Println("| dialer | p50 µs | mean µs |")
	fmt.Println("|---|---:|---:|")
	fmt.Printf("| Concord host | %.0f | %.0f |\n", cp, cm)
	fmt.Printf("| go-libp2p v0.52 host | %.0f | %.0f |\n", gp, gm)
	fmt.Printf("| ratio C/g | %.2f× | %.2f× |\n", cp/gp, cm/gm)
	return nil
}
