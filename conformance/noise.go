package conformance

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/flynn/noise"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/concordp2p/concord/peer"
)

// Spec constants (spec/noise.md).
const (
	noiseID        = "/noise"
	noiseSigPrefix = "noise-libp2p-static-key:"
	noiseMaxMsg    = 65535
	noiseTagLen    = 16
)

var noiseSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

// noisePayload is the NoiseHandshakePayload the adversary sends, with the
// deviations a case asks for (noise 3.1–3.6).
type noisePayload struct {
	identity peer.PrivKey
	static   []byte // the sender's static X25519 public key
	muxers   []string
	mutate   string
}

// Mutations of the handshake payload a case may ask for.
const (
	mutateBadSignature     = "bad-signature"      // one bit of identity_sig flipped
	mutateSigWithoutPrefix = "sig-without-prefix" // signs the static key alone
	mutateUnknownFields    = "unknown-fields"     // unknown fields in the payload and the extensions
)

func (p noisePayload) marshal() ([]byte, error) {
	pub, err := peer.MarshalPublicKey(p.identity.Public())
	if err != nil {
		return nil, err
	}
	signed := append([]byte(noiseSigPrefix), p.static...)
	if p.mutate == mutateSigWithoutPrefix {
		signed = p.static
	}
	sig, err := p.identity.Sign(signed)
	if err != nil {
		return nil, err
	}
	if p.mutate == mutateBadSignature {
		sig = append([]byte(nil), sig...)
		sig[len(sig)/2] ^= 0x01
	}
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, pub)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, sig)
	var ext []byte
	for _, m := range p.muxers {
		ext = protowire.AppendTag(ext, 2, protowire.BytesType)
		ext = protowire.AppendString(ext, m)
	}
	if p.mutate == mutateUnknownFields {
		ext = protowire.AppendTag(ext, 1025, protowire.VarintType) // an experimental code point
		ext = protowire.AppendVarint(ext, 7)
		b = protowire.AppendTag(b, 99, protowire.BytesType)
		b = protowire.AppendString(b, "unknown")
	}
	if len(ext) > 0 {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendBytes(b, ext)
	}
	return b, nil
}

// remotePayload is what the target's payload said.
type remotePayload struct {
	id     peer.ID
	muxers []string
}

// parseNoisePayload decodes and checks the target's payload: the identity
// key, its signature over the static key (noise 3.3, 3.4), the muxers.
func parseNoisePayload(b, remoteStatic []byte) (remotePayload, error) {
	var key, sig []byte
	var out remotePayload
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return out, errors.New("payload: bad tag")
		}
		b = b[n:]
		if typ != protowire.BytesType || (num != 1 && num != 2 && num != 4) {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return out, errors.New("payload: bad field")
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return out, errors.New("payload: bad length")
		}
		b = b[n:]
		switch num {
		case 1:
			key = v
		case 2:
			sig = v
		case 4:
			for len(v) > 0 {
				en, et, m := protowire.ConsumeTag(v)
				if m < 0 {
					return out, errors.New("extensions: bad tag")
				}
				v = v[m:]
				if en == 2 && et == protowire.BytesType {
					s, m := protowire.ConsumeString(v)
					if m < 0 {
						return out, errors.New("extensions: bad muxer")
					}
					out.muxers = append(out.muxers, s)
					v = v[m:]
					continue
				}
				m = protowire.ConsumeFieldValue(en, et, v)
				if m < 0 {
					return out, errors.New("extensions: bad field")
				}
				v = v[m:]
			}
		}
	}
	pub, err := peer.UnmarshalPublicKey(key)
	if err != nil {
		return out, fmt.Errorf("identity_key: %w", err)
	}
	ok, err := pub.Verify(append([]byte(noiseSigPrefix), remoteStatic...), sig)
	if err != nil || !ok {
		return out, fmt.Errorf("identity_sig does not verify (err %v)", err)
	}
	out.id, err = peer.IDFromPublicKey(pub)
	return out, err
}

// noiseHandshake is one run of the adversary's side of Noise XX.
type noiseHandshake struct {
	initiator bool
	payload   noisePayload
	static    noise.DHKey
	// rnd is the source of the ephemeral key (flynn/noise draws it when
	// writing e, ignoring Config.EphemeralKeypair); nil means crypto/rand.
	// The vectors give a reader of the fixed private key.
	rnd io.Reader
	// transcript, if not nil, receives every handshake message as framed
	// on the wire, for the vectors.
	transcript func(fromInitiator bool, framed []byte)
	// beforeRead, if not nil, runs before the first read: it consumes the
	// answers to a lazy multistream-select (multistream 3.5).
	beforeRead func() error
}

// noiseConn is the transport phase over raw (noise 2.1, 2.3).
type noiseConn struct {
	net.Conn
	rd       *bufio.Reader
	enc, dec *noise.CipherState
	pending  []byte
}

func (c *noiseConn) Write(p []byte) (int, error) {
	const max = noiseMaxMsg - noiseTagLen
	var out []byte
	n := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > max {
			chunk = chunk[:max]
		}
		ct, err := c.enc.Encrypt(nil, nil, chunk)
		if err != nil {
			return n, err
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(ct)))
		out = append(out, ct...)
		p = p[len(chunk):]
		n += len(chunk)
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return n, nil
}

func (c *noiseConn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		msg, err := readNoiseMsg(c.rd)
		if err != nil {
			return 0, err
		}
		pt, err := c.dec.Decrypt(nil, nil, msg)
		if err != nil {
			return 0, fmt.Errorf("transport message does not decrypt: %w", err)
		}
		c.pending = pt
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func readNoiseMsg(r *bufio.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

func frameNoise(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)
}

// handshakeError says which step of the handshake failed and whether it was
// a read (the target refused or went away) or a local failure.
type handshakeError struct {
	step string
	read bool
	err  error
}

func (e *handshakeError) Error() string { return e.step + ": " + e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// run performs the handshake on conn; it returns the secured connection and
// the target's payload.
func (h *noiseHandshake) run(conn net.Conn, rd *bufio.Reader) (*noiseConn, remotePayload, error) {
	rnd := h.rnd
	if rnd == nil {
		rnd = rand.Reader
	}
	cfg := noise.Config{CipherSuite: noiseSuite, Random: rnd, Pattern: noise.HandshakeXX,
		Initiator: h.initiator, StaticKeypair: h.static}
	hs, err := noise.NewHandshakeState(cfg)
	if err != nil {
		return nil, remotePayload{}, &handshakeError{step: "init", err: err}
	}
	h.payload.static = h.static.Public
	payload, err := h.payload.marshal()
	if err != nil {
		return nil, remotePayload{}, &handshakeError{step: "payload", err: err}
	}
	write := func(step string, pl []byte) (*noise.CipherState, *noise.CipherState, error) {
		msg, cs1, cs2, err := hs.WriteMessage(nil, pl)
		if err != nil {
			return nil, nil, &handshakeError{step: step, err: err}
		}
		framed := frameNoise(msg)
		if h.transcript != nil {
			h.transcript(h.initiator, framed)
		}
		if _, err := conn.Write(framed); err != nil {
			return nil, nil, &handshakeError{step: step, read: true, err: err}
		}
		return cs1, cs2, nil
	}
	read := func(step string) ([]byte, *noise.CipherState, *noise.CipherState, error) {
		if h.beforeRead != nil {
			before := h.beforeRead
			h.beforeRead = nil
			if err := before(); err != nil {
				return nil, nil, nil, err
			}
		}
		msg, err := readNoiseMsg(rd)
		if err != nil {
			return nil, nil, nil, &handshakeError{step: step, read: true, err: err}
		}
		if h.transcript != nil {
			h.transcript(!h.initiator, frameNoise(msg))
		}
		pl, cs1, cs2, err := hs.ReadMessage(nil, msg)
		if err != nil {
			return nil, nil, nil, &handshakeError{step: step, read: true, err: err}
		}
		return pl, cs1, cs2, nil
	}
	var rp remotePayload
	if h.initiator {
		// -> e
		if _, _, err := write("message 1", nil); err != nil {
			return nil, rp, err
		}
		// <- e, ee, s, es
		pl, _, _, err := read("message 2")
		if err != nil {
			return nil, rp, err
		}
		if rp, err = parseNoisePayload(pl, hs.PeerStatic()); err != nil {
			return nil, rp, &handshakeError{step: "message 2 payload", err: err}
		}
		// -> s, se
		cs1, cs2, err := write("message 3", payload)
		if err != nil {
			return nil, rp, err
		}
		return &noiseConn{Conn: conn, rd: rd, enc: cs1, dec: cs2}, rp, nil
	}
	// -> e
	if _, _, _, err := read("message 1"); err != nil {
		return nil, rp, err
	}
	// <- e, ee, s, es
	if _, _, err := write("message 2", payload); err != nil {
		return nil, rp, err
	}
	// -> s, se
	pl, cs1, cs2, err := read("message 3")
	if err != nil {
		return nil, rp, err
	}
	if rp, err = parseNoisePayload(pl, hs.PeerStatic()); err != nil {
		return nil, rp, &handshakeError{step: "message 3 payload", err: err}
	}
	return &noiseConn{Conn: conn, rd: rd, enc: cs2, dec: cs1}, rp, nil
}
