package yamux

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/network"
)

func frames(fs ...[]byte) []byte { return bytes.Join(fs, nil) }

// FuzzSession feeds arbitrary bytes to a session as everything its peer
// sends, then ends the connection. Whatever the bytes, the session must
// close with a classified error (never a panic, which go-yamux would
// recover and report only as text), leave no stream and no goroutine
// behind (synctest.Test fails on a goroutine still blocked), and hand its
// streams no more bytes than the input held.
func FuzzSession(f *testing.F) {
	f.Add(byte(0), frames(
		encodeFrame(typeWindowUpdate, flagSYN, 1, 0),
		encodeFrame(typeData, 0, 1, 5), []byte("hello"),
		encodeFrame(typeWindowUpdate, flagFIN, 1, 0),
	))
	f.Add(byte(1), frames(
		encodeFrame(typeData, flagSYN, 2, 3), []byte("abc"),
		encodeFrame(typeWindowUpdate, flagRST, 2, 9),
		encodeFrame(typePing, flagSYN, 0, 42),
		encodeFrame(typeGoAway, 0, 0, 1),
	))
	f.Add(byte(0), frames(
		encodeFrame(typeWindowUpdate, flagSYN, 1, 0),
		encodeFrame(typeWindowUpdate, 0, 1, 1<<31),
		encodeFrame(typeWindowUpdate, 0, 1, 1<<31),
	))
	f.Add(byte(0), frames(encodeFrame(typeData, flagSYN, 1, 1<<20), make([]byte, 100)))
	f.Add(byte(0), []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(byte(0), frames(encodeFrame(typeWindowUpdate, flagSYN, 2, 0))) // both clients
	f.Fuzz(func(t *testing.T, role byte, input []byte) {
		synctest.Test(t, func(t *testing.T) {
			r := network.RoleResponder
			if role&1 == 1 {
				r = network.RoleInitiator
			}
			ours, theirs := newPipe(4096)
			s := mustSession(t, Config{MaxIncomingStreams: 4, AcceptBacklog: 2}, ours, r)

			go func() { _, _ = io.Copy(io.Discard, theirs) }()
			go func() {
				_, _ = theirs.Write(input)
				theirs.closeWrite()
			}()
			var delivered int64
			streamsDone := make(chan struct{})
			go func() {
				defer close(streamsDone)
				for {
					st, err := s.AcceptStream(context.Background())
					if err != nil {
						return
					}
					n, _ := io.Copy(io.Discard, st)
					delivered += n
					_ = st.Close()
				}
			}()

			<-s.Done()
			<-streamsDone
			synctest.Wait() // go-yamux closes Done first, then releases streams
			err := s.Err()
			if !errors.Is(err, muxer.ErrSessionClosed) {
				t.Fatalf("Err() = %v, want ErrSessionClosed", err)
			}
			if strings.Contains(err.Error(), "panic") {
				t.Fatalf("go-yamux recovered a panic: %v", err)
			}
			if !errors.Is(err, muxer.ErrConnClosed) && !errors.Is(err, muxer.ErrProtocol) && !errors.Is(err, muxer.ErrGoAway) {
				t.Errorf("Err() = %v, want a cause of ErrConnClosed, ErrProtocol or ErrGoAway", err)
			}
			if n := s.NumStreams(); n != 0 {
				t.Errorf("NumStreams() after close = %d, want 0", n)
			}
			if delivered > int64(len(input)) {
				t.Errorf("streams delivered %d bytes from %d bytes of input", delivered, len(input))
			}
			theirs.Close()
		})
	})
}

// FuzzFrameScanner: the window guard's scanner finds the same headers
// however the byte stream is cut into reads.
func FuzzFrameScanner(f *testing.F) {
	f.Add(frames(encodeFrame(typeData, flagSYN, 1, 3), []byte("abc"), encodeFrame(typeWindowUpdate, 0, 1, 7)), uint16(5))
	f.Add(frames(encodeFrame(typePing, flagSYN, 0, 1), encodeFrame(typeData, 0, 3, 0)), uint16(1))
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16) {
		collect := func(chunk int) [][]byte {
			var s frameScanner
			var got [][]byte
			for p := stream; len(p) > 0; {
				n := min(chunk, len(p))
				_ = s.scan(p[:n], func(h []byte) error {
					got = append(got, bytes.Clone(h))
					return nil
				})
				p = p[n:]
			}
			return got
		}
		whole := collect(len(stream) + 1)
		pieces := collect(int(cut)%17 + 1)
		if len(whole) != len(pieces) {
			t.Fatalf("%d headers read whole, %d in pieces of %d", len(whole), len(pieces), int(cut)%17+1)
		}
		for i := range whole {
			if !bytes.Equal(whole[i], pieces[i]) {
				t.Fatalf("header %d: whole %x, pieces %x", i, whole[i], pieces[i])
			}
		}
		// the first header, if complete, is the stream's first 12 bytes
		if len(stream) >= headerSize && (len(whole) == 0 || !bytes.Equal(whole[0], stream[:headerSize])) {
			t.Fatalf("first header: got %x, want %x", whole, stream[:headerSize])
		}
	})
}
