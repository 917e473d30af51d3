// Package resp is a minimal Redis client: just enough of RESP2 (the Redis
// serialization protocol) for `concord interop`, which coordinates a listener
// and a dialer through a Redis list as the libp2p test-plans transport-interop
// runner does (RPUSH by the listener, BLPOP by the dialer).
//
// It exists so that the root module does not depend on a Redis library for
// two commands. It sends commands as arrays of bulk strings and parses the
// five RESP2 reply types (simple string, error, integer, bulk string, array,
// with the null bulk string and null array), plus RESP3's null ("_"), which a
// server only sends after HELLO 3 and this client never asks for.
//
// # Limits
//
// Replies are bounded so that a hostile or broken server cannot make the
// client allocate without limit: a bulk string holds at most MaxBulk bytes,
// an array at most MaxArray elements, nesting goes at most MaxDepth deep, and
// a line (type byte to CRLF) is at most MaxLine bytes. Anything beyond fails
// with ErrProtocol.
//
// # Cancellation
//
// Every call takes a context; cancelling it closes the connection (the
// Client is then unusable) and the call returns context.Cause(ctx). A Client
// is not safe for concurrent use: one command at a time.
package resp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/concordp2p/concord/internal/ctxconn"
)

// Reply size limits.
const (
	MaxBulk  = 1 << 20
	MaxArray = 1 << 10
	MaxDepth = 4
	MaxLine  = 4 << 10
)

// ErrProtocol means the server's reply does not parse as RESP or exceeds a
// limit.
var ErrProtocol = errors.New("resp: protocol error")

// ServerError is an error reply ("-ERR ...") from the server.
type ServerError struct{ Msg string }

func (e *ServerError) Error() string { return "resp: server error: " + e.Msg }

// Kind is the type of a reply.
type Kind byte

// Reply kinds, named after their RESP type bytes.
const (
	SimpleString Kind = '+'
	Error        Kind = '-'
	Integer      Kind = ':'
	BulkString   Kind = '$'
	Array        Kind = '*'
	Null         Kind = '_' // null bulk string, null array or RESP3 null
)

// Value is one parsed reply.
type Value struct {
	Kind  Kind
	Str   string  // SimpleString, Error, BulkString
	Int   int64   // Integer
	Elems []Value // Array
}

// Equal reports whether v and w are the same reply.
func (v Value) Equal(w Value) bool {
	if v.Kind != w.Kind || v.Str != w.Str || v.Int != w.Int || len(v.Elems) != len(w.Elems) {
		return false
	}
	for i := range v.Elems {
		if !v.Elems[i].Equal(w.Elems[i]) {
			return false
		}
	}
	return true
}

// AppendValue appends v's RESP2 encoding to b (Null as the null bulk
// string). Tests and fake servers use it; the client only reads values.
func AppendValue(b []byte, v Value) []byte {
	switch v.Kind {
	case SimpleString, Error:
		b = append(b, byte(v.Kind))
		b = append(b, v.Str...)
	case Integer:
		b = append(b, ':')
		b = strconv.AppendInt(b, v.Int, 10)
	case BulkString:
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(v.Str)), 10)
		b = append(b, "\r\n"...)
		b = append(b, v.Str...)
	case Array:
		b = append(b, '*')
		b = strconv.AppendInt(b, int64(len(v.Elems)), 10)
		b = append(b, "\r\n"...)
		for _, e := range v.Elems {
			b = AppendValue(b, e)
		}
		return b
	default:
		b = append(b, "$-1"...)
	}
	return append(b, "\r\n"...)
}

// AppendCommand appends a command (an array of bulk strings) to b.
func AppendCommand(b []byte, args ...string) []byte {
	elems := make([]Value, len(args))
	for i, a := range args {
		elems[i] = Value{Kind: BulkString, Str: a}
	}
	return AppendValue(b, Value{Kind: Array, Elems: elems})
}

// ReadValue reads one reply from r.
func ReadValue(r *bufio.Reader) (Value, error) { return readValue(r, 0) }

func readValue(r *bufio.Reader, depth int) (Value, error) {
	line, err := readLine(r)
	if err != nil {
		return Value{}, err
	}
	if len(line) == 0 {
		return Value{}, fmt.Errorf("%w: empty line", ErrProtocol)
	}
	kind, rest := Kind(line[0]), line[1:]
	switch kind {
	case SimpleString, Error:
		return Value{Kind: kind, Str: string(rest)}, nil
	case Null:
		if len(rest) != 0 {
			return Value{}, fmt.Errorf("%w: null with payload %q", ErrProtocol, rest)
		}
		return Value{Kind: Null}, nil
	case Integer:
		n, err := parseInt(rest)
		if err != nil {
			return Value{}, err
		}
		return Value{Kind: Integer, Int: n}, nil
	case BulkString:
		n, err := parseInt(rest)
		if err != nil {
			return Value{}, err
		}
		if n == -1 {
			return Value{Kind: Null}, nil
		}
		if n < 0 || n > MaxBulk {
			return Value{}, fmt.Errorf("%w: bulk string length %d", ErrProtocol, n)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return Value{}, fmt.Errorf("reading bulk string: %w", unexpected(err))
		}
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return Value{}, fmt.Errorf("%w: bulk string not followed by CRLF", ErrProtocol)
		}
		return Value{Kind: BulkString, Str: string(buf[:n])}, nil
	case Array:
		n, err := parseInt(rest)
		if err != nil {
			return Value{}, err
		}
		if n == -1 {
			return Value{Kind: Null}, nil
		}
		if n < 0 || n > MaxArray {
			return Value{}, fmt.Errorf("%w: array length %d", ErrProtocol, n)
		}
		if depth >= MaxDepth {
			return Value{}, fmt.Errorf("%w: arrays nested deeper than %d", ErrProtocol, MaxDepth)
		}
		v := Value{Kind: Array, Elems: make([]Value, 0, min(n, 16))}
		for range n {
			e, err := readValue(r, depth+1)
			if err != nil {
				return Value{}, err
			}
			v.Elems = append(v.Elems, e)
		}
		return v, nil
	default:
		return Value{}, fmt.Errorf("%w: unknown type byte %q", ErrProtocol, line[0])
	}
}

// readLine reads up to CRLF, which it strips, refusing lines over MaxLine
// and bare LFs.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxLine+2 {
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrProtocol, MaxLine)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("reading reply: %w", unexpected(err))
		}
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: line not ended by CRLF", ErrProtocol)
	}
	line = line[:len(line)-2]
	if bytes.ContainsAny(line, "\r\n") {
		return nil, fmt.Errorf("%w: CR or LF inside a line", ErrProtocol)
	}
	return line, nil
}

func parseInt(b []byte) (int64, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || (len(b) > 1 && (b[0] == '+' || b[0] == '0' || (b[0] == '-' && b[1] == '0'))) {
		return 0, fmt.Errorf("%w: bad integer %q", ErrProtocol, b)
	}
	return n, nil
}

// unexpected turns a clean EOF in the middle of a reply into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Client is a connection to a Redis server.
type Client struct {
	conn net.Conn
	r    *bufio.Reader
	buf  []byte
}

// Dial connects to the server at addr ("host:port"), bounded by ctx.
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("resp: connecting to %s: %w", addr, err)
	}
	return &Client{conn: conn, r: bufio.NewReader(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Do sends one command and reads its reply. An error reply is returned as a
// *ServerError. wait is how long the server may legitimately take to answer
// (a blocking command's timeout); Do allows that plus ten seconds.
func (c *Client) Do(ctx context.Context, wait time.Duration, args ...string) (Value, error) {
	b := ctxconn.Bind(ctx, c.conn)
	b.SetDeadline(time.Now().Add(wait + 10*time.Second))
	v, err := c.do(args)
	if err = b.Release(err); err != nil {
		// The reply may be cut short: the connection's state is unknown.
		_ = c.conn.Close()
		return Value{}, err
	}
	if v.Kind == Error {
		return Value{}, &ServerError{Msg: v.Str}
	}
	return v, nil
}

func (c *Client) do(args []string) (Value, error) {
	c.buf = AppendCommand(c.buf[:0], args...)
	if _, err := c.conn.Write(c.buf); err != nil {
		return Value{}, fmt.Errorf("resp: sending %s: %w", args[0], err)
	}
	v, err := ReadValue(c.r)
	if err != nil {
		return Value{}, fmt.Errorf("resp: reply to %s: %w", args[0], err)
	}
	return v, nil
}

// RPush appends value to the list key and returns the list's new length.
func (c *Client) RPush(ctx context.Context, key, value string) (int64, error) {
	v, err := c.Do(ctx, 0, "RPUSH", key, value)
	if err != nil {
		return 0, err
	}
	if v.Kind != Integer {
		return 0, fmt.Errorf("%w: RPUSH answered %q, want an integer", ErrProtocol, v.Kind)
	}
	return v.Int, nil
}

// ErrTimeout means BLPop's timeout passed with the list still empty.
var ErrTimeout = errors.New("resp: BLPOP timed out")

// BLPop removes and returns the first element of the list key, waiting up to
// timeout (rounded up to whole seconds, at least one) for one to appear.
func (c *Client) BLPop(ctx context.Context, key string, timeout time.Duration) (string, error) {
	secs := max(int64((timeout+time.Second-1)/time.Second), 1)
	v, err := c.Do(ctx, time.Duration(secs)*time.Second, "BLPOP", key, strconv.FormatInt(secs, 10))
	if err != nil {
		return "", err
	}
	switch {
	case v.Kind == Null:
		return "", ErrTimeout
	case v.Kind == Array && len(v.Elems) == 2 && v.Elems[1].Kind == BulkString:
		return v.Elems[1].Str, nil
	}
	return "", fmt.Errorf("%w: unexpected BLPOP reply of kind %q", ErrProtocol, v.Kind)
}
