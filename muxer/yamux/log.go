package yamux

import (
	"bytes"
	"context"
	"log/slog"
)

// logWriter turns go-yamux's log.Logger lines into slog records. go-yamux
// formats "2006/01/02 15:04:05 [ERR] yamux: text"; the timestamp is dropped
// (slog has its own) and the tag chooses the level.
type logWriter struct {
	logger *slog.Logger
}

func (w *logWriter) Write(p []byte) (int, error) {
	line := bytes.TrimRight(p, "\n")
	level := slog.LevelInfo
	if i := bytes.IndexByte(line, '['); i >= 0 {
		if j := bytes.IndexByte(line[i:], ']'); j >= 0 {
			switch string(line[i+1 : i+j]) {
			case "ERR":
				level = slog.LevelError
			case "WARN":
				level = slog.LevelWarn
			}
			line = bytes.TrimSpace(line[i+j+1:])
		}
	}
	w.logger.Log(context.Background(), level, string(line), slog.String("component", "go-yamux"))
	return len(p), nil
}
