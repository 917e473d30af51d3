package noise

import (
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/flynn/noise"

	"github.com/concordp2p/concord/peer"
)

// evilPeer speaks Noise XX with flynn/noise directly, independently of the
// code under test, and sends whatever payload a test gives it.
type evilPeer struct {
	t      testing.TB
	conn   net.Conn
	hs     *noise.HandshakeState
	static noise.DHKey
}

func newEvilPeer(t testing.TB, conn net.Conn, initiator bool) *evilPeer {
	t.Helper()
	static, err := noise.DH25519.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256),
		Pattern:       noise.HandshakeXX,
		Initiator:     initiator,
		StaticKeypair: static,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &evilPeer{t: t, conn: conn, hs: hs, static: static}
}

// signedPayload is a valid payload for id, the way a correct peer builds it.
func (e *evilPeer) signedPayload(id peer.PrivKey, muxers []string) []byte {
	e.t.Helper()
	pub, err := peer.MarshalPublicKey(id.Public())
	if err != nil {
		e.t.Fatal(err)
	}
	sig, err := id.Sign(append([]byte(staticKeyPrefix), e.static.Public...))
	if err != nil {
		e.t.Fatal(err)
	}
	p := payload{identityKey: pub, identitySig: sig, muxers: muxers}
	return p.marshal(nil)
}

// write sends the next handshake message with pl as its payload. Errors are
// returned, not fatal: the peer under test may already have hung up.
func (e *evilPeer) write(pl []byte) error {
	msg, _, _, err := e.hs.WriteMessage(nil, pl)
	if err != nil {
		return err
	}
	return writeRawFrame(e.conn, msg)
}

func (e *evilPeer) read() ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(e.conn, hdr[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(e.conn, msg); err != nil {
		return nil, err
	}
	pl, _, _, err := e.hs.ReadMessage(nil, msg)
	return pl, err
}

func writeRawFrame(w io.Writer, msg []byte) error {
	frame := binary.BigEndian.AppendUint16(nil, uint16(len(msg)))
	_, err := w.Write(append(frame, msg...))
	return err
}

func flynnDH25519() noise.DHFunc { return noise.DH25519 }
