package noise

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/flynn/noise"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
)

// Spec constants (noise/README.md, "Wire Format").
const (
	// lenPrefix is the size of noise_message_len, a big-endian uint16.
	lenPrefix = 2
	// maxMessage is the largest noise_message.
	maxMessage = 65535
	// tagSize is the ChaChaPoly authentication tag.
	tagSize = 16
	// dhLen is an X25519 public key.
	dhLen = 32
	// maxPlaintext is the largest transport payload in one message.
	maxPlaintext = maxMessage - tagSize
)

// Steps of the handshake, named in HandshakeError.Step.
const (
	stepStart  = "checking parameters"
	stepKeys   = "preparing keys"
	stepWrite1 = "writing message 1 (-> e)"
	stepRead1  = "reading message 1 (-> e)"
	stepWrite2 = "writing message 2 (<- e, ee, s, es)"
	stepRead2  = "reading message 2 (<- e, ee, s, es)"
	stepWrite3 = "writing message 3 (-> s, se)"
	stepRead3  = "reading message 3 (-> s, se)"
	stepMuxer  = "agreeing on a stream muxer"
	stepFinish = "finishing"
)

// handshake is the state of one XX handshake. It is owned by the goroutine
// running Transport.Handshake.
type handshake struct {
	ctx context.Context
	t   *Transport
	raw net.Conn
	p   security.Params

	static *staticIdentity
	dh     *ecdhFunc
	hs     *noise.HandshakeState
	buf    []byte // frame buffer, reused by every message

	// Results.
	remoteKey  peer.PubKey
	remoteID   peer.ID
	muxer      string
	send, recv *noise.CipherState
}

// run performs the handshake for h.p.Role.
func (h *handshake) run() error {
	if err := h.init(); err != nil {
		return h.fail(stepKeys, err)
	}
	// The transport CipherStates keep a reference to the cipher suite, and
	// so to the DH function: drop the keys it holds once the handshake is
	// over, so that the ephemeral private key does not live as long as the
	// connection (forward secrecy, and about 0.5 KiB per connection end).
	defer h.dh.forget()
	if h.p.Role == network.RoleInitiator {
		return h.runInitiator()
	}
	return h.runResponder()
}

func (h *handshake) init() error {
	s, err := h.t.statics.get()
	if err != nil {
		return err
	}
	h.static = s
	h.dh = &ecdhFunc{static: s.key, staticRaw: s.priv, ephemerals: h.t.ephemerals}
	var dh noise.DHFunc = h.dh
	if h.t.flynnDH {
		dh = noise.DH25519
	}
	h.hs, err = noise.NewHandshakeState(noise.Config{
		CipherSuite:   noise.NewCipherSuite(dh, h.t.cipher, h.t.hash),
		Pattern:       noise.HandshakeXX,
		Initiator:     h.p.Role == network.RoleInitiator,
		StaticKeypair: noise.DHKey{Private: s.priv, Public: s.pub},
	})
	if err != nil {
		return fmt.Errorf("initializing the Noise state: %w", err)
	}
	h.buf = make([]byte, 0, 1024)
	return nil
}

// runInitiator is the initiator's side of XX:
//
//	-> e
//	<- e, ee, s, es   responder's payload: identity, signature, its muxers
//	-> s, se          our payload: identity, signature, our muxers
func (h *handshake) runInitiator() error {
	// -> e  (no payload: nothing may be sent before the channel is secret)
	if err := h.writeMessage(nil); err != nil {
		return h.fail(stepWrite1, err)
	}
	// <- e, ee, s, es
	rp, err := h.readMessage()
	if err != nil {
		return h.fail(stepRead2, err)
	}
	if err := h.authenticate(rp); err != nil {
		return h.fail(stepRead2, err)
	}
	// The initiator knows both lists now and fails before sending its
	// identity when they are disjoint.
	if h.muxer, err = agreeMuxer(h.p.Muxers, rp.muxers); err != nil {
		return h.fail(stepMuxer, err)
	}
	// -> s, se
	if err := h.writeMessage(h.ourPayload()); err != nil {
		return h.fail(stepWrite3, err)
	}
	return nil
}

// runResponder is the responder's side of XX:
//
//	-> e              must carry no payload
//	<- e, ee, s, es   our payload: identity, signature, our muxers
//	-> s, se          initiator's payload: identity, signature, its muxers
func (h *handshake) runResponder() error {
	// -> e
	if err := h.readMessage1(); err != nil {
		return h.fail(stepRead1, err)
	}
	// <- e, ee, s, es
	if err := h.writeMessage(h.ourPayload()); err != nil {
		return h.fail(stepWrite2, err)
	}
	// -> s, se
	ip, err := h.readMessage()
	if err != nil {
		return h.fail(stepRead3, err)
	}
	if err := h.authenticate(ip); err != nil {
		return h.fail(stepRead3, err)
	}
	if h.muxer, err = agreeMuxer(ip.muxers, h.p.Muxers); err != nil {
		return h.fail(stepMuxer, err)
	}
	return nil
}

func (h *handshake) fail(step string, err error) error {
	return security.StepError(h.ctx, ID, step, err)
}

// ourPayload encodes this side's handshake payload.
func (h *handshake) ourPayload() []byte {
	p := payload{identityKey: h.static.identityKey, identitySig: h.static.identitySig, muxers: h.p.Muxers}
	return p.marshal(nil)
}

// writeMessage writes the next handshake message, framed, in one Write.
func (h *handshake) writeMessage(pl []byte) error {
	frame, cs1, cs2, err := h.hs.WriteMessage(h.buf[:lenPrefix], pl)
	if err != nil {
		return err
	}
	if len(frame)-lenPrefix > maxMessage {
		return fmt.Errorf("%w: our message is %d bytes, at most %d", security.ErrInvalidParams, len(frame)-lenPrefix, maxMessage)
	}
	binary.BigEndian.PutUint16(frame, uint16(len(frame)-lenPrefix))
	h.buf = frame[:0]
	if _, err := h.raw.Write(frame); err != nil {
		return err
	}
	h.split(cs1, cs2)
	return nil
}

// readFrame reads one framed handshake message into h.buf. It reads exactly
// the frame, never beyond it: transport data may follow message 3.
func (h *handshake) readFrame() ([]byte, error) {
	var hdr [lenPrefix]byte
	if _, err := io.ReadFull(h.raw, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if cap(h.buf) < n {
		h.buf = make([]byte, 0, n)
	}
	msg := h.buf[:n]
	if _, err := io.ReadFull(h.raw, msg); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: message truncated: %w", security.ErrProtocol, err)
	}
	return msg, nil
}

// readMessage1 reads the initiator's "-> e", which must carry no payload.
func (h *handshake) readMessage1() error {
	msg, err := h.readFrame()
	if err != nil {
		return err
	}
	if len(msg) != dhLen {
		return fmt.Errorf("%w: message 1 is %d bytes, want %d (an ephemeral key and no payload)", security.ErrProtocol, len(msg), dhLen)
	}
	_, _, _, err = h.hs.ReadMessage(nil, msg)
	return err
}

// readMessage reads message 2 or 3 and decodes its payload.
func (h *handshake) readMessage() (*payload, error) {
	msg, err := h.readFrame()
	if err != nil {
		return nil, err
	}
	// Not in place: flynn/noise hashes the ciphertext after decrypting it.
	// The payload gets a buffer of its own and may alias it.
	pl, cs1, cs2, err := h.hs.ReadMessage(nil, msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", security.ErrProtocol, err)
	}
	h.split(cs1, cs2)
	return unmarshalPayload(pl)
}

func (h *handshake) split(cs1, cs2 *noise.CipherState) {
	if cs1 == nil {
		return
	}
	if h.p.Role == network.RoleInitiator {
		h.send, h.recv = cs1, cs2
	} else {
		h.send, h.recv = cs2, cs1
	}
}

// authenticate checks the peer's payload: its identity key, the expected
// peer ID, and the signature over the static key the handshake received. A
// check that succeeded before, for the same identity key, signature and
// static key, is taken from the Transport's cache.
func (h *handshake) authenticate(p *payload) error {
	if len(p.identityKey) == 0 {
		return fmt.Errorf("%w: payload has no identity key", security.ErrProtocol)
	}
	ck := newVerifiedKey(p.identityKey, p.identitySig, h.hs.PeerStatic())
	if v, ok := h.t.verified.get(ck); ok {
		if h.p.ExpectedPeer != "" && v.id != h.p.ExpectedPeer {
			return &security.PeerIDMismatchError{Expected: h.p.ExpectedPeer, Got: v.id}
		}
		h.remoteKey, h.remoteID = v.key, v.id
		return nil
	}
	key, err := peer.UnmarshalPublicKey(p.identityKey)
	if err != nil {
		return fmt.Errorf("%w: %w", security.ErrIdentityKey, err)
	}
	id, err := peer.IDFromPublicKey(key)
	if err != nil {
		return fmt.Errorf("%w: %w", security.ErrIdentityKey, err)
	}
	// Checked before the signature: a wrong peer costs no verification.
	if h.p.ExpectedPeer != "" && id != h.p.ExpectedPeer {
		return &security.PeerIDMismatchError{Expected: h.p.ExpectedPeer, Got: id}
	}
	signed := append([]byte(staticKeyPrefix), h.hs.PeerStatic()...)
	ok, err := key.Verify(signed, p.identitySig)
	if err != nil {
		return fmt.Errorf("%w: %w", security.ErrInvalidSignature, err)
	}
	if !ok {
		return security.ErrInvalidSignature
	}
	h.t.verified.put(ck, verified{key: key, id: id})
	h.remoteKey, h.remoteID = key, id
	return nil
}

// agreeMuxer picks the first of the initiator's muxers that the responder
// also offers (connections/inlined-muxer-negotiation.md). With an empty list
// on either side no muxer is agreed here. Two non-empty lists without a
// common name fail: the spec says the handshake MUST fail (go-libp2p falls
// back to multistream-select instead).
func agreeMuxer(initiator, responder []string) (string, error) {
	if len(initiator) == 0 || len(responder) == 0 {
		return "", nil
	}
	for _, m := range initiator {
		for _, r := range responder {
			if m == r {
				return m, nil
			}
		}
	}
	return "", fmt.Errorf("%w: the initiator offers %d, the responder %d, none in both", security.ErrNoCommonMuxer, len(initiator), len(responder))
}
