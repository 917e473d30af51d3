package yamux

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	r, err := Config{}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	yc := r.yamuxConfig()
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"keepalive enabled", yc.EnableKeepAlive, true},
		{"KeepAliveInterval", yc.KeepAliveInterval, 10 * time.Second},
		{"ConnectionWriteTimeout (ping timeout)", yc.ConnectionWriteTimeout, 10 * time.Second},
		{"WriteStallTimeout", r.WriteStallTimeout, 30 * time.Second},
		{"MaxIncomingStreams", yc.MaxIncomingStreams, uint32(128)},
		{"AcceptBacklog", yc.AcceptBacklog, 64},
		{"InitialStreamWindowSize", yc.InitialStreamWindowSize, uint32(256 << 10)},
		{"MaxStreamWindowSize", yc.MaxStreamWindowSize, uint32(8 << 20)},
		{"ReadBufSize", yc.ReadBufSize, 0},                   // secured conns buffer already
		{"MaxMessageSize", yc.MaxMessageSize, uint32(65519)}, // one Noise message
		{"LogOutput", yc.LogOutput, io.Writer(io.Discard)},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestConfigOverridesAndDisables(t *testing.T) {
	r, err := Config{KeepAliveInterval: -1, ReadBufferSize: -1, PingTimeout: time.Second}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	yc := r.yamuxConfig()
	if yc.EnableKeepAlive || yc.ReadBufSize != 0 || yc.ConnectionWriteTimeout != time.Second {
		t.Errorf("got keepalive %v, read buffer %d, write timeout %v; want false, 0, 1s",
			yc.EnableKeepAlive, yc.ReadBufSize, yc.ConnectionWriteTimeout)
	}
}

func TestConfigInvalid(t *testing.T) {
	for _, cfg := range []Config{
		{PingTimeout: -1},
		{WriteStallTimeout: -1},
		{MaxIncomingStreams: -1},
		{AcceptBacklog: -1},
		{MaxStreamWindow: 100 << 10},
		{MaxMessageSize: 512},
		{MeasureRTTInterval: -1},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%+v): got %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

func TestLogWriter(t *testing.T) {
	var buf bytes.Buffer
	w := &logWriter{logger: slog.New(slog.NewTextHandler(&buf, nil))}
	lines := []string{
		"2026/11/23 03:00:00 [ERR] yamux: keepalive failed: x\n",
		"2026/11/23 03:00:00 [WARN] yamux: backlog exceeded\n",
	}
	for _, l := range lines {
		if n, err := w.Write([]byte(l)); n != len(l) || err != nil {
			t.Fatalf("Write: got %d, %v; want %d, nil", n, err, len(l))
		}
	}
	got := buf.String()
	for _, want := range []string{
		`level=ERROR msg="yamux: keepalive failed: x" component=go-yamux`,
		`level=WARN msg="yamux: backlog exceeded" component=go-yamux`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log output %q lacks %q", got, want)
		}
	}
}
