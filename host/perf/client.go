package perf

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/concordp2p/concord/host/internal/watchdog"
	"io"
	"time"
)

// Client runs perf measurements. The zero value is ready to use, with the
// defaults.
type Client struct {
	// ProgressInterval is the least time between two progress reports.
	// Zero or negative means DefaultProgressInterval.
	ProgressInterval time.Duration
	// IdleTimeout bounds each read and each write. Zero or negative means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
}

// Progress is a report during a run.
type Progress struct {
	Elapsed              time.Duration // since Run started
	Uploaded, Downloaded uint64        // bytes so far
	// Interval is the time since the previous report (or since Run
	// started), and IntervalUploaded and IntervalDownloaded the bytes
	// moved during it: what the runner's intermediary lines show.
	Interval                             time.Duration
	IntervalUploaded, IntervalDownloaded uint64
}

// Result is the outcome of a run.
type Result struct {
	Uploaded, Downloaded uint64 // bytes moved; on error, those moved so far
	// Upload is the time from the start of Run until the upload was
	// written and the write side closed; Download the time from then until
	// the server's EOF; Total their sum (see the package doc).
	Upload, Download, Total time.Duration
}

// Run is Client{}.Run.
func Run(ctx context.Context, s Stream, upload, download uint64, progress func(Progress)) (Result, error) {
	return Client{}.Run(ctx, s, upload, download, progress)
}

// Run asks the server for download bytes, uploads upload bytes (zeros),
// closes its write side and reads the server's bytes until its EOF. It calls
// progress (if not nil), from Run's goroutine, when ProgressInterval or
// more has passed since the previous report, checked after each read and
// write. A server that sends fewer or more bytes than requested fails the
// run with ErrShortDownload or ErrLongDownload.
func (c Client) Run(ctx context.Context, s Stream, upload, download uint64, progress func(Progress)) (res Result, err error) {
	every, idle := c.ProgressInterval, c.IdleTimeout
	if every <= 0 {
		every = DefaultProgressInterval
	}
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	w := watchdog.Watch(ctx, s, idle)
	m := meter{every: every, report: progress, start: time.Now()}
	m.last = m.start
	defer func() {
		err = w.Release(ctx, err, ErrIdleTimeout)
		res.Uploaded, res.Downloaded = m.up, m.down
	}()

	var hdr [HeaderSize]byte
	binary.BigEndian.PutUint64(hdr[:], download)
	if _, err := w.Write(hdr[:]); err != nil {
		return res, fmt.Errorf("perf: writing header: %w", err)
	}
	buf := blocks.Get().(*[]byte)
	defer blocks.Put(buf)
	clear(*buf)
	if err := send(w, *buf, upload, m.sent); err != nil {
		return res, fmt.Errorf("perf: uploading: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		return res, fmt.Errorf("perf: closing write side: %w", err)
	}
	res.Upload = time.Since(m.start)

	for {
		n, err := w.Read(*buf)
		m.received(n)
		if m.down > download {
			return res, fmt.Errorf("%w: more than %d bytes", ErrLongDownload, download)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, fmt.Errorf("perf: downloading: %w", err)
		}
	}
	if m.down < download {
		return res, fmt.Errorf("%w: got %d of %d bytes", ErrShortDownload, m.down, download)
	}
	res.Total = time.Since(m.start)
	res.Download = res.Total - res.Upload
	return res, nil
}

// meter counts bytes and reports progress at most once per interval.
type meter struct {
	every       time.Duration
	report      func(Progress)
	start, last time.Time
	up, down    uint64 // totals
	lastUp      uint64 // totals at the last report
	lastDown    uint64
}

func (m *meter) sent(n int)     { m.up += uint64(n); m.tick() }
func (m *meter) received(n int) { m.down += uint64(n); m.tick() }

func (m *meter) tick() {
	if m.report == nil {
		return
	}
	now := time.Now()
	if now.Sub(m.last) < m.every {
		return
	}
	m.report(Progress{
		Elapsed:            now.Sub(m.start),
		Uploaded:           m.up,
		Downloaded:         m.down,
		Interval:           now.Sub(m.last),
		IntervalUploaded:   m.up - m.lastUp,
		IntervalDownloaded: m.down - m.lastDown,
	})
	m.last, m.lastUp, m.lastDown = now, m.up, m.down
}

// Report is what JSONLine formats: a Progress or a Result.
type Report interface{ runnerLine() runnerLine }

// runnerLine is the libp2p test-plans perf runner's output schema
// (test-plans perf/README.md): {type, timeSeconds, uploadBytes, downloadBytes}.
type runnerLine struct {
	Type          string  `json:"type"` // "intermediary" or "final"
	TimeSeconds   float64 `json:"timeSeconds"`
	UploadBytes   uint64  `json:"uploadBytes"`
	DownloadBytes uint64  `json:"downloadBytes"`
}

func (p Progress) runnerLine() runnerLine {
	return runnerLine{"intermediary", p.Interval.Seconds(), p.IntervalUploaded, p.IntervalDownloaded}
}

func (r Result) runnerLine() runnerLine {
	return runnerLine{"final", r.Total.Seconds(), r.Uploaded, r.Downloaded}
}

// JSONLine formats r as one line of the libp2p test-plans perf runner's
// output, newline included. A Progress becomes an "intermediary" line with
// the bytes and time of its interval (the runner's implementations report
// per interval, not totals); a Result a "final" line with Total and the
// byte totals.
func JSONLine(r Report) ([]byte, error) {
	b, err := json.Marshal(r.runnerLine())
	if err != nil {
		return nil, fmt.Errorf("perf: formatting runner line: %w", err)
	}
	return append(b, '\n'), nil
}
