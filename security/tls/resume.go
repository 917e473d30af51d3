package tls

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"sync"
	"time"

	"github.com/concordp2p/concord/peer"
)

// Session resumption, between Concord peers only (see Resumption in the
// package doc).
//
// A Concord server starts every session ticket with ticketMagic, and a
// Concord client keeps only tickets that start with it, so a client never
// offers a ticket to a go-libp2p or js-libp2p server (go-libp2p issues
// none; Node's TLS server would, and its libp2p layer was never tested
// with a resumed session). The client keeps one ticket per peer ID and
// offers it only when it dials that peer ID; the server checks the
// client's certificate restored from the ticket as it checks a fresh one.
const ticketMagic = "concord/tls-ticket/1:"

// ticketExtraNotAfter tags the SessionState.Extra entry that carries the
// client certificate's NotAfter (Unix seconds, 8 bytes big-endian): a
// ticket whose certificate has expired is ignored rather than resumed and
// then refused.
const ticketExtraNotAfter = "concord/not-after:"

// ticketKeyPeriod is how long a ticket key issues tickets; tickets made
// with the key before it still resume, so a ticket lives one to two
// periods (crypto/tls also bounds it to 7 days).
const ticketKeyPeriod = 24 * time.Hour

// ticketKeys are the server's session ticket keys: the current one, and
// the one before it.
type ticketKeys struct {
	now func() time.Time

	mu   sync.Mutex
	keys [][32]byte // newest first; replaced, never changed in place
	made time.Time  // of keys[0]
}

func (k *ticketKeys) get() ([][32]byte, error) {
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) == 0 || now.Sub(k.made) >= ticketKeyPeriod || now.Before(k.made) {
		var key [32]byte
		if _, err := rand.Read(key[:]); err != nil {
			return nil, err
		}
		keys := [][32]byte{key}
		if len(k.keys) > 0 {
			keys = append(keys, k.keys[0])
		}
		k.keys, k.made = keys, now
	}
	return k.keys, nil
}

// sessionEntry is a ticket a client keeps for one peer.
type sessionEntry struct {
	state    *tls.ClientSessionState
	notAfter time.Time // of the server's certificate
}

// peerSessions is the client's tls.ClientSessionCache for one handshake:
// whatever key crypto/tls asks for (the spec forbids SNI, so it would be
// the address), it answers for the peer ID dialed.
type peerSessions struct {
	cache *lru[peer.ID, sessionEntry]
	peer  peer.ID
	v     *verifier
	now   func() time.Time
}

func (s *peerSessions) Get(string) (*tls.ClientSessionState, bool) {
	e, ok := s.cache.get(s.peer)
	if !ok || !s.now().Before(e.notAfter) {
		return nil, false
	}
	return e.state, true
}

// Put runs when the server's NewSessionTicket arrives, after the handshake
// verified the server as s.peer.
func (s *peerSessions) Put(_ string, cs *tls.ClientSessionState) {
	if cs == nil {
		s.cache.delete(s.peer)
		return
	}
	ticket, _, err := cs.ResumptionState()
	if err != nil || !bytes.HasPrefix(ticket, []byte(ticketMagic)) || s.v.id != s.peer {
		return
	}
	s.cache.put(s.peer, sessionEntry{state: cs, notAfter: s.v.notAfter})
}

// serveTickets makes cfg, a server's, issue Concord tickets with the
// transport's keys and resume them. The ticket waits in rw until the
// connection's first write.
func (t *Transport) serveTickets(cfg *tls.Config, rw *recordWriter) error {
	keys, err := t.tickets.get()
	if err != nil {
		return err
	}
	cfg.SetSessionTicketKeys(keys)
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		if len(cs.PeerCertificates) == 1 {
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(cs.PeerCertificates[0].NotAfter.Unix()))
			ss.Extra = append(ss.Extra, append([]byte(ticketExtraNotAfter), b[:]...))
		}
		ticket, err := cfg.EncryptTicket(cs, ss)
		if err != nil {
			return nil, err
		}
		rw.holdTicket()
		return append([]byte(ticketMagic), ticket...), nil
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		rest, ok := bytes.CutPrefix(identity, []byte(ticketMagic))
		if !ok {
			return nil, nil
		}
		ss, err := cfg.DecryptTicket(rest, cs)
		if err != nil || ss == nil {
			return nil, nil // not ours, or made with a key that is gone: a full handshake
		}
		for _, e := range ss.Extra {
			if v, ok := bytes.CutPrefix(e, []byte(ticketExtraNotAfter)); ok && len(v) == 8 {
				if t.now().Unix() < int64(binary.BigEndian.Uint64(v)) {
					return ss, nil
				}
			}
		}
		return nil, nil // no expiry recorded, or the client's certificate expired
	}
	return nil
}
