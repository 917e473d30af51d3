package main

// The hellostall command: a peer that stalls in the hello exchange.

import (
	"context"
	"encoding/binary"
	"io"
	"sync"
	"time"

	"github.com/multiformats/go-multistream"

	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/transport/tcp"
	"github.com/concordp2p/concord/upgrader"
)

// halfStall is what the stalling peer saw of one half of the hello.
type halfStall struct {
	start, end time.Time
	err        error // why the stream ended; nil: the host closed it (EOF)
}

// helloStall connects to PEER at MADDR as a peer of its own (a fresh key,
// a bare upgrader, no host: the process's host takes no part) that stalls
// in both halves of the hello. It reads the host's hello proposal and
// never answers it, and it opens a hello stream of its own, has it
// accepted and never sends the message. It answers "na" to any other
// protocol (identify). Each half ends when the host gives up and closes
// the stream; the reply gives the time from the half's start as this peer
// sees it (the proposal read; the protocol agreed) to that end.
func helloStall(ctx context.Context, args []string) reply {
	ai, err := addrInfo(args[0], args[1])
	if err != nil {
		return errReply(err)
	}
	key, err := peer.GenerateKey(peer.Ed25519, nil)
	if err != nil {
		return errReply(err)
	}
	u, err := upgrader.New(upgrader.Config{Identity: key})
	if err != nil {
		return errReply(err)
	}
	raw, err := tcp.New(tcp.Config{DisableReuse: true}).Dial(ctx, ai.Addrs[0])
	if err != nil {
		return errReply(err)
	}
	c, err := u.Upgrade(ctx, raw, network.DirOutbound, ai.ID)
	if err != nil {
		return errReply(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.Close()
	dl, _ := ctx.Deadline()
	in := make(chan halfStall, 1)
	out := make(chan halfStall, 1)
	wg.Go(func() {
		var swg sync.WaitGroup
		defer swg.Wait()
		for {
			s, err := c.AcceptStream(ctx)
			if err != nil {
				return
			}
			_ = s.SetDeadline(dl)
			swg.Go(func() { stallServe(s, in) })
		}
	})
	wg.Go(func() {
		s, err := c.OpenStream(ctx)
		if err != nil {
			out <- halfStall{err: err}
			return
		}
		defer s.Reset()
		_ = s.SetDeadline(dl)
		if err := multistream.SelectProtoOrFail(host.HelloProtocolID, s); err != nil {
			out <- halfStall{err: err}
			return
		}
		h := halfStall{start: time.Now()}
		_, h.err = io.Copy(io.Discard, s) // never send the hello
		h.end = time.Now()
		out <- h
	})
	r := reply{}
	for _, half := range []struct {
		name string
		ch   chan halfStall
	}{{"in", in}, {"out", out}} {
		select {
		case h := <-half.ch:
			if h.err != nil {
				r[half.name+"Err"] = h.err.Error()
			}
			if !h.start.IsZero() {
				r[half.name+"After"] = h.end.Sub(h.start)
			}
		case <-ctx.Done():
			r[half.name+"Err"] = "not ended: " + context.Cause(ctx).Error()
		}
	}
	return r
}

// stallServe serves one stream the host opened: the hello proposal is
// read and never answered (the half reported on in), anything else is
// refused.
func stallServe(s muxer.Stream, in chan<- halfStall) {
	defer s.Reset()
	if _, err := multistream.ReadNextToken[string](s); err != nil {
		return
	}
	proto, err := multistream.ReadNextToken[string](s)
	if err != nil {
		return
	}
	if proto != host.HelloProtocolID {
		_ = writeTokens(s, "/multistream/1.0.0", "na")
		_, _ = io.Copy(io.Discard, s)
		return
	}
	h := halfStall{start: time.Now()}
	_, h.err = io.Copy(io.Discard, s) // never answer
	h.end = time.Now()
	select {
	case in <- h:
	default: // a second hello stream: only the first is reported
	}
}

// writeTokens writes multistream-select messages: a uvarint length, the
// token, a newline.
func writeTokens(w io.Writer, toks ...string) error {
	var b []byte
	for _, t := range toks {
		b = binary.AppendUvarint(b, uint64(len(t)+1))
		b = append(b, t...)
		b = append(b, '\n')
	}
	_, err := w.Write(b)
	return err
}
