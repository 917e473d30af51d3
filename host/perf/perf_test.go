package perf

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"runtime"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/concordp2p/concord/muxer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counted records what a server writes to its stream.
type counted struct {
	Stream
	written uint64
}

// Reset keeps the stream's Reset visible to Serve.
func (c *counted) Reset() error { return c.Stream.(muxer.Stream).Reset() }

func (c *counted) Write(p []byte) (int, error) {
	n, err := c.Stream.Write(p)
	c.written += uint64(n)
	return n, err
}

type result struct {
	err     error
	written uint64
}

// serve runs srv on s in a goroutine and reports its error and the bytes
// it wrote.
func serve(ctx context.Context, srv Server, s Stream) <-chan result {
	done := make(chan result, 1)
	go func() {
		c := &counted{Stream: s}
		err := srv.Serve(ctx, c)
		done <- result{err, c.written}
	}()
	return done
}

// TestRunSizes runs transfers of several sizes, zero and non-multiples of
// BlockSize included, over yamux on a path with a 2 ms one-way delay: the
// client counts exactly what it asked for and the server writes exactly
// that, never more.
func TestRunSizes(t *testing.T) {
	for _, tc := range []struct{ up, down uint64 }{
		{0, 0}, {1, 0}, {0, 1},
		{BlockSize - 1, BlockSize + 1}, {BlockSize, BlockSize},
		{3*BlockSize + 7, 5*BlockSize + 3}, {1 << 20, 4<<20 + 1},
	} {
		t.Run("", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, s := streamPair(t, 2*time.Millisecond)
				defer c.Close()
				done := serve(t.Context(), Server{}, s)
				res, err := Run(t.Context(), c, tc.up, tc.down, nil)
				if err != nil {
					t.Fatalf("Run(%d up, %d down): %v", tc.up, tc.down, err)
				}
				if res.Uploaded != tc.up || res.Downloaded != tc.down {
					t.Errorf("moved %d up, %d down; want %d, %d", res.Uploaded, res.Downloaded, tc.up, tc.down)
				}
				if res.Total != res.Upload+res.Download || res.Total <= 0 {
					t.Errorf("times %+v: want Total = Upload + Download > 0", res)
				}
				r := <-done
				if r.err != nil || r.written != tc.down {
					t.Errorf("Serve: wrote %d bytes, %v; want %d, nil", r.written, r.err, tc.down)
				}
			})
		})
	}
}

// TestServeRefusesTooLarge: asking for MaxDownload is served, asking for
// one byte more is refused with a reset before anything is sent, and the
// client gets a typed error.
func TestServeRefusesTooLarge(t *testing.T) {
	const limit = 3*BlockSize + 5
	for _, tc := range []struct {
		up, down uint64
		refused  bool
	}{
		{0, limit, false}, {0, limit + 1, true}, {1 << 20, limit + 1, true}, {0, math.MaxUint64, true},
	} {
		t.Run("", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, s := streamPair(t, time.Millisecond)
				defer c.Close()
				done := serve(t.Context(), Server{MaxDownload: limit}, s)
				res, err := Run(t.Context(), c, tc.up, tc.down, nil)
				r := <-done
				if !tc.refused {
					if err != nil || res.Downloaded != limit || r.err != nil {
						t.Errorf("Run: %+v, %v; Serve: %v; want the limit served", res, err, r.err)
					}
					return
				}
				if !errors.Is(err, muxer.ErrStreamReset) || res.Downloaded != 0 {
					t.Errorf("Run: %d bytes down, %v; want 0 and ErrStreamReset", res.Downloaded, err)
				}
				if !errors.Is(r.err, ErrDownloadTooLarge) || r.written != 0 {
					t.Errorf("Serve: wrote %d, %v; want 0, ErrDownloadTooLarge", r.written, r.err)
				}
			})
		})
	}
}

// TestRunWrongDownload: a server that sends fewer or more bytes than asked
// fails the run with ErrShortDownload or ErrLongDownload.
func TestRunWrongDownload(t *testing.T) {
	for _, tc := range []struct {
		send uint64
		want error
	}{{99, ErrShortDownload}, {101, ErrLongDownload}, {0, ErrShortDownload}, {BlockSize + 100, ErrLongDownload}} {
		t.Run("", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, s := streamPair(t, 0)
				defer c.Close()
				go func() {
					defer s.Close()
					if _, err := io.Copy(io.Discard, s); err != nil {
						return
					}
					_ = send(s, make([]byte, BlockSize), tc.send, nil)
					_ = s.CloseWrite()
				}()
				if _, err := Run(t.Context(), c, 10, 100, nil); !errors.Is(err, tc.want) {
					t.Errorf("server sending %d of 100: %v, want %v", tc.send, err, tc.want)
				}
			})
		})
	}
}

// slowStream is a perf server where every write takes 100 ms and every read
// returns up to one block of the download after 100 ms.
type slowStream struct {
	download uint64 // left to return
}

const tick = 100 * time.Millisecond

func (s *slowStream) Write(p []byte) (int, error) { time.Sleep(tick); return len(p), nil }
func (s *slowStream) Read(p []byte) (int, error) {
	if s.download == 0 {
		return 0, io.EOF
	}
	time.Sleep(tick)
	n := min(uint64(len(p)), s.download)
	s.download -= n
	return int(n), nil
}
func (s *slowStream) CloseWrite() error           { return nil }
func (s *slowStream) Close() error                { return nil }
func (s *slowStream) SetDeadline(time.Time) error { return nil }

// TestProgress checks the reports on the fake clock against a server whose
// every operation takes 100 ms: the header ends at 0.1 s, the 25 upload
// blocks at 2.6 s, the 15 download blocks at 4.1 s; reports come at the
// first operation at least a second after the previous one.
func TestProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const B = BlockSize
		var got []Progress
		res, err := Run(t.Context(), &slowStream{download: 15 * B}, 25*B, 15*B, func(p Progress) {
			got = append(got, p)
		})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		s := time.Second
		want := []Progress{
			{Elapsed: s, Uploaded: 9 * B, Interval: s, IntervalUploaded: 9 * B},
			{Elapsed: 2 * s, Uploaded: 19 * B, Interval: s, IntervalUploaded: 10 * B},
			{Elapsed: 3 * s, Uploaded: 25 * B, Downloaded: 4 * B, Interval: s, IntervalUploaded: 6 * B, IntervalDownloaded: 4 * B},
			{Elapsed: 4 * s, Uploaded: 25 * B, Downloaded: 14 * B, Interval: s, IntervalDownloaded: 10 * B},
		}
		if !slices.Equal(got, want) {
			t.Errorf("progress:\n got %+v\nwant %+v", got, want)
		}
		wantRes := Result{Uploaded: 25 * B, Downloaded: 15 * B, Upload: 2600 * time.Millisecond,
			Download: 1500 * time.Millisecond, Total: 4100 * time.Millisecond}
		if res != wantRes {
			t.Errorf("result %+v, want %+v", res, wantRes)
		}
	})
}

// TestProgressInterval: a custom interval over yamux; reports are at least
// the interval apart and add up to the totals so far.
func TestProgressInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := streamPair(t, 20*time.Millisecond)
		defer c.Close()
		done := serve(t.Context(), Server{}, s)
		const every = 100 * time.Millisecond
		var got []Progress
		res, err := Client{ProgressInterval: every}.Run(t.Context(), c, 8<<20, 8<<20, func(p Progress) {
			got = append(got, p)
		})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if len(got) < 3 {
			t.Fatalf("%d reports in %v, want several", len(got), res.Total)
		}
		var prev Progress
		for i, p := range got {
			if p.Interval < every || p.Elapsed != prev.Elapsed+p.Interval ||
				p.Uploaded != prev.Uploaded+p.IntervalUploaded || p.Downloaded != prev.Downloaded+p.IntervalDownloaded {
				t.Errorf("report %d: %+v after %+v: inconsistent or under %v apart", i, p, prev, every)
			}
			prev = p
		}
		if r := <-done; r.err != nil {
			t.Errorf("Serve: %v", r.err)
		}
	})
}

// TestRunCancel: cancelling ctx during a long download ends Run at once
// with the cause; resetting the stream then ends the server.
func TestRunCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := streamPair(t, 50*time.Millisecond)
		done := serve(t.Context(), Server{MaxDownload: math.MaxUint64}, s)
		cause := errors.New("enough")
		ctx, cancel := context.WithCancelCause(t.Context())
		const after = 300 * time.Millisecond
		time.AfterFunc(after, func() { cancel(cause) })
		start := time.Now()
		res, err := Run(ctx, c, 0, 1<<50, nil)
		if err != cause {
			t.Errorf("Run: %v, want the cause %v", err, cause)
		}
		if got := time.Since(start); got != after {
			t.Errorf("Run returned after %v, want %v", got, after)
		}
		if res.Downloaded == 0 {
			t.Errorf("nothing downloaded in %v", after)
		}
		_ = c.Reset()
		if r := <-done; !errors.Is(r.err, muxer.ErrStreamReset) {
			t.Errorf("Serve: %v, want ErrStreamReset", r.err)
		}
	})
}

// TestIdleTimeout: a client that sends its header and then neither uploads
// more nor closes has its stream closed after IdleTimeout; and a client
// whose server stays silent gives up after its own IdleTimeout.
func TestIdleTimeout(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			const delay = 10 * time.Millisecond
			c, s := streamPair(t, delay)
			defer c.Close()
			start := time.Now()
			done := serve(t.Context(), Server{IdleTimeout: 3 * time.Second}, s)
			if _, err := c.Write(make([]byte, HeaderSize+5)); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if !errors.Is(r.err, ErrIdleTimeout) {
				t.Errorf("Serve: %v, want ErrIdleTimeout", r.err)
			}
			if got := time.Since(start); got != delay+3*time.Second {
				t.Errorf("Serve returned after %v, want %v", got, delay+3*time.Second)
			}
		})
	})
	t.Run("client", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, s := streamPair(t, 0)
			defer c.Close()
			defer s.Close()
			start := time.Now()
			_, err := Run(t.Context(), c, 100, 100, nil)
			if !errors.Is(err, ErrIdleTimeout) {
				t.Errorf("Run: %v, want ErrIdleTimeout", err)
			}
			if got := time.Since(start); got != DefaultIdleTimeout {
				t.Errorf("Run returned after %v, want %v", got, DefaultIdleTimeout)
			}
		})
	})
}

// TestRunTCP runs over loopback TCP, where the refusal is a connection
// reset or a short download rather than a stream reset.
func TestRunTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		down uint64
		ok   bool
	}{{10<<20 + 3, true}, {DefaultMaxDownload + 1, false}} {
		done := make(chan error, 1)
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				done <- err
				return
			}
			done <- Serve(context.Background(), conn.(*net.TCPConn))
		}()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		res, err := Run(ctx, conn.(*net.TCPConn), 3<<20, tc.down, nil)
		cancel()
		conn.Close()
		serr := <-done
		if tc.ok && (err != nil || res.Downloaded != tc.down || serr != nil) {
			t.Errorf("Run: %+v, %v; Serve: %v; want %d bytes down, no errors", res, err, serr, tc.down)
		}
		if !tc.ok && (err == nil || !errors.Is(serr, ErrDownloadTooLarge)) {
			t.Errorf("Run: %v; Serve: %v; want errors, ErrDownloadTooLarge", err, serr)
		}
	}
}

// TestJSONLine checks the runner's format with the examples of test-plans
// perf/README.md.
func TestJSONLine(t *testing.T) {
	for _, tc := range []struct {
		r    Report
		want string
	}{
		{Progress{Elapsed: 5 * time.Second, Uploaded: 1 << 40, Interval: 1004957645, IntervalUploaded: 73039872},
			`{"type":"intermediary","timeSeconds":1.004957645,"uploadBytes":73039872,"downloadBytes":0}` + "\n"},
		{Result{Total: 60127230659, Upload: time.Second, Uploaded: 4382392320},
			`{"type":"final","timeSeconds":60.127230659,"uploadBytes":4382392320,"downloadBytes":0}` + "\n"},
		{Result{Downloaded: math.MaxUint64},
			`{"type":"final","timeSeconds":0,"uploadBytes":0,"downloadBytes":18446744073709551615}` + "\n"},
	} {
		got, err := JSONLine(tc.r)
		if err != nil || string(got) != tc.want {
			t.Errorf("JSONLine(%+v) = %s, %v; want %s", tc.r, got, err, tc.want)
		}
	}
}

// fakeClient plays a perf client that sends in and closes its write side,
// recording what the server writes without keeping it.
type fakeClient struct {
	in      *bytes.Reader
	written uint64
	nonzero bool
	limit   uint64 // Write fails after this many bytes, if not 0
	closed  bool
	reset   bool
}

var errWriteLimit = errors.New("fake write limit")

func (f *fakeClient) Read(p []byte) (int, error) { return f.in.Read(p) }
func (f *fakeClient) Write(p []byte) (int, error) {
	if f.limit > 0 && f.written >= f.limit {
		return 0, errWriteLimit
	}
	f.written += uint64(len(p))
	f.nonzero = f.nonzero || slices.ContainsFunc(p, func(b byte) bool { return b != 0 })
	return len(p), nil
}
func (f *fakeClient) CloseWrite() error           { return nil }
func (f *fakeClient) Close() error                { f.closed = true; return nil }
func (f *fakeClient) Reset() error                { f.reset = true; return nil }
func (f *fakeClient) SetDeadline(time.Time) error { return nil }

// FuzzServe feeds arbitrary bytes to the server as the client's request
// and upload. The server never panics; it sends exactly the bytes asked for,
// all zeros (nothing of this or an earlier upload), when that is within its
// limit, and closes the stream; otherwise it sends nothing, resets the
// stream and says why.
func FuzzServe(f *testing.F) {
	const limit = 4*BlockSize + 1
	hdr := func(n uint64, upload string) []byte {
		return append(binary.BigEndian.AppendUint64(nil, n), upload...)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0})
	f.Add(hdr(0, ""))
	f.Add(hdr(limit, "upload"))
	f.Add(hdr(limit+1, ""))
	f.Add(hdr(math.MaxUint64, "x"))
	f.Add(hdr(BlockSize+1, string(bytes.Repeat([]byte{0xff}, 3*BlockSize))))
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &fakeClient{in: bytes.NewReader(in)}
		err := Server{MaxDownload: limit}.Serve(context.Background(), s)
		if s.nonzero {
			t.Errorf("the server sent non-zero bytes")
		}
		switch {
		case len(in) < HeaderSize:
			if !errors.Is(err, ErrTruncatedHeader) || s.written != 0 || !s.reset {
				t.Errorf("%d-byte input: Serve %v, wrote %d, reset %v; want ErrTruncatedHeader, 0, reset", len(in), err, s.written, s.reset)
			}
		case binary.BigEndian.Uint64(in) > limit:
			if !errors.Is(err, ErrDownloadTooLarge) || s.written != 0 || !s.reset {
				t.Errorf("asked %d: Serve %v, wrote %d, reset %v; want ErrDownloadTooLarge, 0, reset", binary.BigEndian.Uint64(in), err, s.written, s.reset)
			}
		default:
			if n := binary.BigEndian.Uint64(in); err != nil || s.written != n || !s.closed || s.reset {
				t.Errorf("asked %d: Serve %v, wrote %d, closed %v, reset %v; want nil, %d, closed", n, err, s.written, s.closed, s.reset, n)
			}
		}
	})
}

// TestServeMemory: serving a download of 2^60 bytes, cut short by the
// client after 64 MiB, allocates far less than it sends.
func TestServeMemory(t *testing.T) {
	in := binary.BigEndian.AppendUint64(nil, 1<<60)
	s := &fakeClient{in: bytes.NewReader(in), limit: 64 << 20}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := Server{MaxDownload: math.MaxUint64}.Serve(context.Background(), s)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, errWriteLimit) || s.written != s.limit {
		t.Fatalf("Serve: wrote %d, %v; want %d, the fake's write error", s.written, err, s.limit)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("Serve allocated %d bytes to send %d; want under 1 MiB", alloc, s.written)
	}
}
