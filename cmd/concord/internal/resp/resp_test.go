package resp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestReadValue(t *testing.T) {
	tests := []struct {
		in   string
		want Value
	}{
		{"+OK\r\n", Value{Kind: SimpleString, Str: "OK"}},
		{"-ERR wrong\r\n", Value{Kind: Error, Str: "ERR wrong"}},
		{":42\r\n", Value{Kind: Integer, Int: 42}},
		{":-7\r\n", Value{Kind: Integer, Int: -7}},
		{"$5\r\nhe\r\no\r\n", Value{Kind: BulkString, Str: "he\r\no"}},
		{"$0\r\n\r\n", Value{Kind: BulkString}},
		{"$-1\r\n", Value{Kind: Null}},
		{"*-1\r\n", Value{Kind: Null}},
		{"_\r\n", Value{Kind: Null}},
		{"*2\r\n$12\r\nlistenerAddr\r\n$3\r\n/a/\r\n", Value{Kind: Array, Elems: []Value{
			{Kind: BulkString, Str: "listenerAddr"}, {Kind: BulkString, Str: "/a/"}}}},
	}
	for _, tt := range tests {
		got, err := ReadValue(bufio.NewReader(strings.NewReader(tt.in)))
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ReadValue(%q) = %+v, %v; want %+v, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestReadValueRejects(t *testing.T) {
	for _, in := range []string{
		"", "\r\n", "?x\r\n", "+OK\n", "+O\rK\r\n", ":abc\r\n", ":+1\r\n", ":01\r\n", ":-0\r\n",
		"$3\r\nab\r\n", "$3\r\nabcd\r\n", "$-2\r\n", "$9999999999\r\n", "*2\r\n:1\r\n",
		"*2000\r\n", "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "_x\r\n",
		"+" + strings.Repeat("a", MaxLine+1) + "\r\n",
	} {
		_, err := ReadValue(bufio.NewReader(strings.NewReader(in)))
		if err == nil {
			t.Errorf("ReadValue(%.40q) succeeded, want an error", in)
		}
		if !errors.Is(err, ErrProtocol) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("ReadValue(%.40q) = %v, want ErrProtocol or io.ErrUnexpectedEOF", in, err)
		}
	}
}

func TestAppendCommand(t *testing.T) {
	got := string(AppendCommand(nil, "RPUSH", "listenerAddr", ""))
	want := "*3\r\n$5\r\nRPUSH\r\n$12\r\nlistenerAddr\r\n$0\r\n\r\n"
	if got != want {
		t.Errorf("AppendCommand = %q, want %q", got, want)
	}
}

// fakeServer answers each command read from one connection with the next of
// replies, recording the commands.
func fakeServer(t *testing.T, replies ...string) (addr string, commands chan []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	commands = make(chan []string, len(replies))
	done := make(chan struct{})
	t.Cleanup(func() { _ = ln.Close(); <-done })
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		for _, reply := range replies {
			v, err := ReadValue(r)
			if err != nil {
				return
			}
			var args []string
			for _, e := range v.Elems {
				args = append(args, e.Str)
			}
			commands <- args
			if reply == "" {
				// Hold the reply back until the client gives up.
				_, _ = io.Copy(io.Discard, conn)
				return
			}
			if _, err := conn.Write([]byte(reply)); err != nil {
				return
			}
		}
	}()
	return ln.Addr().String(), commands
}

func TestClient(t *testing.T) {
	addr, commands := fakeServer(t, ":1\r\n", "*2\r\n$12\r\nlistenerAddr\r\n$4\r\n/x/y\r\n", "*-1\r\n", "-WRONGTYPE no\r\n")
	ctx := context.Background()
	c, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := c.RPush(ctx, "listenerAddr", "/x/y"); n != 1 || err != nil {
		t.Errorf("RPush = %d, %v; want 1, nil", n, err)
	}
	if got := <-commands; strings.Join(got, " ") != "RPUSH listenerAddr /x/y" {
		t.Errorf("server got %q, want RPUSH listenerAddr /x/y", got)
	}
	if v, err := c.BLPop(ctx, "listenerAddr", 1500*time.Millisecond); v != "/x/y" || err != nil {
		t.Errorf("BLPop = %q, %v; want /x/y, nil", v, err)
	}
	if got := <-commands; strings.Join(got, " ") != "BLPOP listenerAddr 2" {
		t.Errorf("server got %q, want BLPOP listenerAddr 2 (timeout rounded up)", got)
	}
	if _, err := c.BLPop(ctx, "listenerAddr", 0); !errors.Is(err, ErrTimeout) {
		t.Errorf("BLPop on a null reply: %v, want ErrTimeout", err)
	}
	var se *ServerError
	if _, err := c.RPush(ctx, "k", "v"); !errors.As(err, &se) || se.Msg != "WRONGTYPE no" {
		t.Errorf("RPush on an error reply: %v, want *ServerError WRONGTYPE no", err)
	}
}

func TestClientCancel(t *testing.T) {
	addr, _ := fakeServer(t, "")
	c, err := Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cause := errors.New("test gave up")
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(50*time.Millisecond, func() { cancel(cause) })
	start := time.Now()
	_, err = c.BLPop(ctx, "listenerAddr", time.Minute)
	if !errors.Is(err, cause) {
		t.Errorf("BLPop after cancel: %v, want the context's cause", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("BLPop returned %v after cancel, want promptly", d)
	}
}

// FuzzReadValue checks that whatever parses re-encodes to a value that
// parses back equal, and that the parser never reads past the reply.
func FuzzReadValue(f *testing.F) {
	for _, s := range []string{"+OK\r\n", ":12\r\n", "$3\r\nabc\r\n", "*2\r\n$1\r\na\r\n*1\r\n:-4\r\n", "$-1\r\n", "_\r\n", "-E\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		v, err := ReadValue(r)
		if err != nil {
			return
		}
		enc := AppendValue(nil, v)
		w, err := ReadValue(bufio.NewReader(bytes.NewReader(enc)))
		if err != nil || !w.Equal(v) {
			t.Fatalf("%q parsed as %+v, re-encoded %q parsed as %+v, %v", in, v, enc, w, err)
		}
		consumed := len(in) - restLen(r)
		if consumed < 0 || consumed > len(in) {
			t.Fatalf("consumed %d of %d bytes", consumed, len(in))
		}
		if v.Kind != Null && !containsNull(v) && !bytes.Equal(enc, in[:consumed]) {
			t.Fatalf("%q parsed as %+v but re-encodes as %q: the parser accepted a non-canonical form", in[:consumed], v, enc)
		}
	})
}

func restLen(r *bufio.Reader) int {
	n, _ := io.Copy(io.Discard, r)
	return int(n)
}

func containsNull(v Value) bool {
	for _, e := range v.Elems {
		if e.Kind == Null || containsNull(e) {
			return true
		}
	}
	return false
}
