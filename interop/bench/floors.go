package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	ctls "crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/flynn/noise"
	"golang.org/x/crypto/chacha20poly1305"
)

// The floors: what a connection costs with nothing but the socket and the
// cryptography. floorStack runs the same workloads as the libp2p stacks,
// over loopback, in three kinds:
//
//   - tcp: raw TCP, no security, no muxer.
//   - noise: a bare Noise_XX_25519_ChaChaPoly_SHA256 handshake with
//     flynn/noise (both sides' static X25519 keys made once, as Concord
//     reuses its static key; no libp2p payload, so no identity signature
//     and no peer-ID check), then Noise transport messages in 2-byte
//     length-prefixed frames of up to 65535 bytes, as libp2p Noise
//     frames them. The X25519 is crypto/ecdh with parsed keys kept for
//     the handshake (floorDH), one scalar multiplication per DH and per
//     key generation; flynn/noise's own DH25519 costs two of each.
//   - tls: crypto/tls 1.3 with pre-built ECDSA P-256 self-signed
//     certificates on both ends (the libp2p TLS key type), Go's default
//     key exchange (X25519MLKEM768), no certificate verification and no
//     session resumption.
//
// A floor connection has no muxer: its first "stream" is the connection
// itself, and every further stream opened on it is a new connection (with
// its own handshake) to the same server.

// floorKind names a floor.
type floorKind string

const (
	floorTCP   floorKind = "tcp"
	floorNoise floorKind = "noise"
	floorTLS   floorKind = "tls"
)

type floorStack struct {
	kind floorKind
	ln   net.Listener
	addr string
	srv  *server
	done chan struct{}
	// Pre-built identities of each end.
	srvStatic, cliStatic noise.DHKey
	srvTLS, cliTLS       *ctls.Config
}

var noiseSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

// floorDH is X25519 over crypto/ecdh for one handshake, keeping the parsed
// static and ephemeral private keys so that each DH is one scalar
// multiplication.
type floorDH struct {
	static, eph *ecdh.PrivateKey
	staticRaw   []byte
}

func (d *floorDH) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	k, err := ecdh.X25519().GenerateKey(rng)
	if err != nil {
		return noise.DHKey{}, err
	}
	d.eph = k
	return noise.DHKey{Private: k.Bytes(), Public: k.PublicKey().Bytes()}, nil
}

func (d *floorDH) DH(priv, pub []byte) ([]byte, error) {
	k := d.eph
	if bytes.Equal(priv, d.staticRaw) {
		k = d.static
	}
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return k.ECDH(p)
}

func (d *floorDH) DHLen() int     { return 32 }
func (d *floorDH) DHName() string { return "25519" }

func newFloor(kind floorKind) (stack, error) {
	s := &floorStack{kind: kind, srv: newServer(), done: make(chan struct{})}
	var err error
	switch kind {
	case floorNoise:
		if s.srvStatic, err = noiseSuite.GenerateKeypair(rand.Reader); err != nil {
			return nil, err
		}
		if s.cliStatic, err = noiseSuite.GenerateKeypair(rand.Reader); err != nil {
			return nil, err
		}
	case floorTLS:
		sc, err := selfSigned()
		if err != nil {
			return nil, err
		}
		cc, err := selfSigned()
		if err != nil {
			return nil, err
		}
		s.srvTLS = &ctls.Config{Certificates: []ctls.Certificate{sc}, ClientAuth: ctls.RequireAnyClientCert,
			MinVersion: ctls.VersionTLS13, SessionTicketsDisabled: true}
		s.cliTLS = &ctls.Config{Certificates: []ctls.Certificate{cc}, InsecureSkipVerify: true,
			MinVersion: ctls.VersionTLS13, SessionTicketsDisabled: true}
	}
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	s.addr = s.ln.Addr().String()
	go func() {
		defer close(s.done)
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.srv.wg.Go(func() {
				c.SetDeadline(time.Now().Add(opTimeout))
				st, err := s.secure(context.Background(), c, false)
				if err != nil {
					c.Close()
					return
				}
				c.SetDeadline(time.Time{})
				sc := &floorServerConn{st: st, done: make(chan struct{})}
				first := true
				s.srv.track(sc, func() (stream, error) {
					if first {
						first = false
						return sc, nil
					}
					<-sc.done
					return nil, io.EOF
				})
			})
		}
	}()
	return s, nil
}

// selfSigned is an ECDSA P-256 self-signed certificate.
func selfSigned() (ctls.Certificate, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return ctls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return ctls.Certificate{}, err
	}
	return ctls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, nil
}

// secure runs the floor's handshake on c.
func (s *floorStack) secure(ctx context.Context, c net.Conn, client bool) (stream, error) {
	switch s.kind {
	case floorNoise:
		static := s.srvStatic
		if client {
			static = s.cliStatic
		}
		return noiseHandshake(c, client, static)
	case floorTLS:
		var tc *ctls.Conn
		if client {
			tc = ctls.Client(c, s.cliTLS)
		} else {
			tc = ctls.Server(c, s.srvTLS)
		}
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		return tc, nil
	}
	return c.(*net.TCPConn), nil
}

func (s *floorStack) Name() string { return "floor " + string(s.kind) }

func (s *floorStack) Target() (string, string)      { return s.addr, "" }
func (s *floorStack) Retarget(addr, _ string) error { s.addr = addr; return nil }
func (s *floorStack) Live() int64                   { return s.srv.live.Load() }

func (s *floorStack) dial(ctx context.Context) (stream, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	st, err := s.secure(ctx, c, true)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return st, nil
}

func (s *floorStack) Dial(ctx context.Context) (clientConn, error) {
	st, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	return &floorClient{s: s, first: st}, nil
}

func (s *floorStack) Close() error {
	err := s.ln.Close()
	<-s.done
	s.srv.closeAll()
	return err
}

// floorServerConn is a server-side floor connection and its only stream.
type floorServerConn struct {
	st   stream
	once sync.Once
	done chan struct{}
}

func (c *floorServerConn) Read(p []byte) (int, error)  { return c.st.Read(p) }
func (c *floorServerConn) Write(p []byte) (int, error) { return c.st.Write(p) }
func (c *floorServerConn) CloseWrite() error           { return c.st.CloseWrite() }
func (c *floorServerConn) Close() error {
	err := c.st.Close()
	c.once.Do(func() { close(c.done) })
	return err
}

// floorClient is a client-side floor connection: its first stream is the
// connection; each further one is a new connection.
type floorClient struct {
	s     *floorStack
	mu    sync.Mutex
	first stream
	used  bool
	more  []stream
}

func (c *floorClient) OpenStream(ctx context.Context) (stream, error) {
	c.mu.Lock()
	if !c.used {
		c.used = true
		c.mu.Unlock()
		return firstStream{c.first}, nil
	}
	c.mu.Unlock()
	st, err := c.s.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.more = append(c.more, st)
	c.mu.Unlock()
	return st, nil
}

// firstStream is a floor connection's first stream: closing it leaves the
// connection open (idle, with the server still reading it), as closing a
// stream leaves a muxed connection open; floorClient.Close closes it.
type firstStream struct{ stream }

func (firstStream) Close() error { return nil }

func (c *floorClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.more {
		st.Close()
	}
	return c.first.Close()
}

// noiseConn carries Noise transport messages over c: each frame is a
// 2-byte big-endian length and a ciphertext; an empty plaintext ends the
// sender's direction (CloseWrite).
type noiseConn struct {
	c        net.Conn
	r        *bufio.Reader
	enc, dec *noise.CipherState
	wmu      sync.Mutex
	wbuf     []byte
	rbuf     []byte // ciphertext of the frame being read
	plain    []byte // decrypted bytes not yet returned
	pbuf     []byte
	eof      bool
}

const maxNoiseFrame = 65535

// noiseHandshake runs XX: -> e; <- e, ee, s, es; -> s, se.
func noiseHandshake(c net.Conn, initiator bool, static noise.DHKey) (*noiseConn, error) {
	sk, err := ecdh.X25519().NewPrivateKey(static.Private)
	if err != nil {
		return nil, err
	}
	dh := &floorDH{static: sk, staticRaw: static.Private}
	hs, err := noise.NewHandshakeState(noise.Config{CipherSuite: noise.NewCipherSuite(dh, noise.CipherChaChaPoly, noise.HashSHA256),
		Pattern: noise.HandshakeXX, Initiator: initiator, StaticKeypair: static})
	if err != nil {
		return nil, err
	}
	nc := &noiseConn{c: c, r: bufio.NewReaderSize(c, 4096)}
	var cs1, cs2 *noise.CipherState
	for i := range 3 {
		if (i%2 == 0) == initiator {
			msg, a, b, err := hs.WriteMessage(make([]byte, 2, 128), nil)
			if err != nil {
				return nil, err
			}
			binary.BigEndian.PutUint16(msg, uint16(len(msg)-2))
			if _, err := c.Write(msg); err != nil {
				return nil, err
			}
			cs1, cs2 = a, b
		} else {
			ct, err := nc.readFrame()
			if err != nil {
				return nil, err
			}
			_, a, b, err := hs.ReadMessage(nil, ct)
			if err != nil {
				return nil, err
			}
			cs1, cs2 = a, b
		}
	}
	if cs1 == nil || cs2 == nil {
		return nil, errors.New("noise floor: handshake did not finish")
	}
	nc.enc, nc.dec = cs1, cs2
	if !initiator {
		nc.enc, nc.dec = cs2, cs1
	}
	return nc, nil
}

func (c *noiseConn) readFrame() ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(h[:]))
	if cap(c.rbuf) < n {
		c.rbuf = make([]byte, n)
	}
	c.rbuf = c.rbuf[:n]
	if _, err := io.ReadFull(c.r, c.rbuf); err != nil {
		return nil, err
	}
	return c.rbuf, nil
}

func (c *noiseConn) Read(p []byte) (int, error) {
	for len(c.plain) == 0 {
		if c.eof {
			return 0, io.EOF
		}
		ct, err := c.readFrame()
		if err != nil {
			return 0, err
		}
		if cap(c.pbuf) < len(ct) {
			c.pbuf = make([]byte, 0, len(ct))
		}
		pt, err := c.dec.Decrypt(c.pbuf[:0], nil, ct)
		if err != nil {
			return 0, fmt.Errorf("noise floor: %w", err)
		}
		if len(pt) == 0 {
			c.eof = true
		}
		c.plain = pt
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	return n, nil
}

func (c *noiseConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxNoiseFrame-16)
		if err := c.writeFrame(p[:n]); err != nil {
			return written, err
		}
		p = p[n:]
		written += n
	}
	return written, nil
}

func (c *noiseConn) writeFrame(p []byte) error {
	if cap(c.wbuf) < 2+len(p)+16 {
		c.wbuf = make([]byte, 2, 2+len(p)+16)
	}
	out, err := c.enc.Encrypt(c.wbuf[:2], nil, p)
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint16(out, uint16(len(out)-2))
	_, err = c.c.Write(out)
	return err
}

func (c *noiseConn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeFrame(nil)
}

func (c *noiseConn) Close() error { return c.c.Close() }

// aeadFloor seals and then opens total bytes in 64 KiB messages with one
// AEAD, on one core: MB/s of sealed-and-opened plaintext and CPU seconds
// per GiB (both ends' cryptographic work for a GiB sent).
func aeadFloor(a cipher.AEAD, total int64) (mbps, cpuPerGiB float64) {
	msg := make([]byte, 64<<10)
	rand.Read(msg)
	sealed := make([]byte, 0, len(msg)+a.Overhead())
	opened := make([]byte, 0, len(msg))
	nonce := make([]byte, a.NonceSize())
	cpu0 := cpuTime()
	start := time.Now()
	var done int64
	for i := uint64(0); done < total; i++ {
		binary.LittleEndian.PutUint64(nonce[len(nonce)-8:], i)
		sealed = a.Seal(sealed[:0], nonce, msg, nil)
		var err error
		if opened, err = a.Open(opened[:0], nonce, sealed, nil); err != nil {
			panic(err) // cannot fail: we sealed it
		}
		done += int64(len(msg))
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	return float64(done) / elapsed.Seconds() / 1e6, cpu.Seconds() / (float64(done) / (1 << 30))
}

func chachaFloor(total int64) (float64, float64) {
	a, err := chacha20poly1305.New(make([]byte, chacha20poly1305.KeySize))
	if err != nil {
		panic(err)
	}
	return aeadFloor(a, total)
}

// aesFloor is AES-128-GCM, the cipher crypto/tls 1.3 picks with AES-NI.
func aesFloor(total int64) (float64, float64) {
	b, err := aes.NewCipher(make([]byte, 16))
	if err != nil {
		panic(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return aeadFloor(a, total)
}
