package simopen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"unicode/utf8"

	"github.com/concordp2p/concord/internal/ctxconn"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/multiformats/go-multistream"
)

// Config configures one run of the stage. The zero value of each optional
// field means its documented default. The stage does not modify it.
type Config struct {
	// Protocols are the security protocol IDs this side supports, most
	// preferred first, e.g. "/noise", "/tls/1.0.0". Required. Each must be
	// valid UTF-8 without a newline, short enough to fit a token, and must
	// not be one of the extension's tokens.
	Protocols []string
	// LocalPeer is this side's peer ID.
	LocalPeer peer.ID
	// RemotePeer is the peer ID we dialed, "" when unknown. An election
	// tie is broken by peer ID only when both are known.
	RemotePeer peer.ID
	// Rand is the source of the election number. Default crypto/rand.
	Rand io.Reader
	// MaxTokenLen bounds a received token, newline included. Zero means
	// DefaultMaxTokenLen (1024), which is also the largest value allowed;
	// the smallest is 29, room for the extension's own tokens.
	// Accept reads through go-multistream, whose limit is fixed at 1024.
	MaxTokenLen int
}

func (c *Config) maxTokenLen() int {
	if c.MaxTokenLen == 0 {
		return DefaultMaxTokenLen
	}
	return c.MaxTokenLen
}

func (c *Config) rand() io.Reader {
	if c.Rand == nil {
		return rand.Reader
	}
	return c.Rand
}

// Validate reports whether c can be used, as Dial and Accept check it: an
// error wrapping ErrInvalidConfig says what is wrong.
func (c Config) Validate() error { return c.validate() }

// validate checks what the wire format needs of the configuration.
func (c *Config) validate() error {
	if c.MaxTokenLen != 0 && (c.MaxTokenLen < minTokenLimit || c.MaxTokenLen > DefaultMaxTokenLen) {
		return fmt.Errorf("%w: MaxTokenLen %d outside %d..%d", ErrInvalidConfig, c.MaxTokenLen, minTokenLimit, DefaultMaxTokenLen)
	}
	if len(c.Protocols) == 0 {
		return fmt.Errorf("%w: no protocols", ErrInvalidConfig)
	}
	seen := make(map[string]bool, len(c.Protocols))
	for _, p := range c.Protocols {
		switch {
		case p == "" || len(p)+1 > c.maxTokenLen():
			return fmt.Errorf("%w: protocol ID of %d bytes (want 1..%d)", ErrInvalidConfig, len(p), c.maxTokenLen()-1)
		case !utf8.ValidString(p) || strings.ContainsRune(p, '\n'):
			return fmt.Errorf("%w: protocol ID %q is not UTF-8 without newlines", ErrInvalidConfig, p)
		case p == ProtocolHeader || p == ProtocolID || p == TokenNA || p == TokenInitiator ||
			p == TokenResponder || strings.HasPrefix(p, SelectPrefix):
			return fmt.Errorf("%w: protocol ID %q collides with a token of the extension", ErrInvalidConfig, p)
		case seen[p]:
			return fmt.Errorf("%w: protocol ID %q listed twice", ErrInvalidConfig, p)
		}
		seen[p] = true
	}
	return nil
}

// readChunk is how much one Read asks for. The decoder holds at most
// MaxTokenLen plus one chunk.
const readChunk = 512

// Dial runs the stage on a connection this side dialed: it pipelines the
// header, the simopen token and the first proposal, then either negotiates
// as multistream-select initiator (the peer answered "na") or runs the
// election (the peer dialed too). It returns the conn to hand to the
// security handshake: it yields first any bytes read past the last token
// and, when Result.Pipelined, carries the held-back tokens (see Result).
//
// ctx bounds the stage: its end sets a deadline in the past on conn, so no
// read or write outlives it; on success no deadline of ctx's is left. On error the conn is in an
// unknown state and the caller must close it.
//
// conn's Write must not wait for the peer to read a few hundred bytes
// (true of TCP); both dialers write before reading.
func Dial(ctx context.Context, conn net.Conn, cfg Config) (Result, net.Conn, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, nil, err
	}
	var b [8]byte
	if _, err := io.ReadFull(cfg.rand(), b[:]); err != nil {
		return Result{}, nil, fmt.Errorf("simopen: drawing the election number: %w", err)
	}
	m := newMachine(cfg.Protocols, cfg.LocalPeer, cfg.RemotePeer, binary.LittleEndian.Uint64(b[:]))
	dec := newDecoder(cfg.maxTokenLen())

	release, err := bind(ctx, conn)
	if err != nil {
		return Result{}, nil, err
	}
	err = drive(conn, m, dec)
	if err = release(err); err != nil {
		return Result{}, nil, err
	}
	if m.res.Pipelined && m.state != stateDone {
		return m.res, &lazyConn{Conn: conn, m: m, dec: dec, held: m.takeHeld()}, nil
	}
	return m.res, withPrefix(conn, dec.rest()), nil
}

// drive runs m over conn until it hands off or fails.
func drive(conn net.Conn, m *machine, dec *decoder) error {
	var buf [readChunk]byte
	for {
		for _, w := range m.output() {
			if _, err := conn.Write(w); err != nil {
				return fmt.Errorf("simopen: writing in state %s: %w", m.state, err)
			}
		}
		if m.handoff() {
			return nil
		}
		tok, ok, err := dec.next()
		if err != nil {
			return m.fail(fmt.Errorf("%w (in state %s)", err, m.state))
		}
		if ok {
			if err := m.receive(tok); err != nil {
				return err
			}
			continue
		}
		n, err := conn.Read(buf[:])
		dec.push(buf[:n])
		switch {
		case err == nil || n > 0:
			// Process what arrived; a persistent error repeats.
		case errors.Is(err, io.EOF):
			return m.eof()
		default:
			return fmt.Errorf("simopen: reading in state %s: %w", m.state, err)
		}
	}
}

// Accept runs the stage on a connection this side accepted: it is a plain
// multistream-select responder (go-multistream's MultistreamMuxer), which
// answers "na" to the simopen token, and returns with Role responder and
// the first proposal it supports. ctx is handled as in Dial.
//
// Token limits here are go-multistream's: at most 1024 bytes with the
// newline, a minimal length prefix, a trailing newline; a proposal that is
// not valid UTF-8 cannot match a configured protocol and is answered "na".
// MultistreamMuxer reads exactly one token at a time, so no byte of the
// security handshake is consumed.
func Accept(ctx context.Context, conn net.Conn, cfg Config) (Result, net.Conn, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, nil, err
	}
	mux := multistream.NewMultistreamMuxer[string]()
	for _, p := range cfg.Protocols {
		mux.AddHandler(p, nil) // selection only; the handler is never called
	}
	release, err := bind(ctx, conn)
	if err != nil {
		return Result{}, nil, err
	}
	proto, _, err := mux.Negotiate(conn)
	if err != nil {
		err = fmt.Errorf("simopen: accept: %w", err)
	}
	if err = release(err); err != nil {
		return Result{}, nil, err
	}
	return Result{Role: network.RoleResponder, Protocol: proto}, conn, nil
}

// bind makes conn's deadline follow ctx (internal/ctxconn) until release
// is called with the stage's error. release restores "no deadline" and,
// when ctx ended the stage, returns context.Cause(ctx) joined to the I/O
// error it caused.
func bind(ctx context.Context, conn net.Conn) (release func(error) error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("simopen: %w", context.Cause(ctx))
	}
	b := ctxconn.Bind(ctx, conn)
	return func(stageErr error) error {
		err := b.Release(stageErr)
		if err != nil && ctx.Err() != nil && errors.Is(err, context.Cause(ctx)) {
			return fmt.Errorf("simopen: %w", err)
		}
		return err
	}, nil
}
