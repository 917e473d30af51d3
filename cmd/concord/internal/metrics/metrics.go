// Package metrics turns a Concord host's events into Prometheus metrics
// and serves them, for the concord command's -metrics flag. It lives here,
// not in the library, so that only the command depends on
// prometheus/client_golang: a library user maps host.Config.Observer onto
// the metrics system of their choice.
//
// Every metric is named concord_*; the README's "Metrics" section lists
// them. The counts come from host events (host.Config.Observer); the live
// streams and the listener's refusals are read from the host when it is
// attached (Attach); stream bytes are counted on the streams the command
// wraps with Stream.
package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/upgrader"
)

// Metrics holds the collectors of one process. Observe may be called from
// any goroutine; it never blocks.
type Metrics struct {
	reg *prometheus.Registry

	handshakes      *prometheus.CounterVec   // direction, stage, outcome
	handshakeTime   *prometheus.HistogramVec // direction, stage
	elections       *prometheus.CounterVec   // role, tie_break
	duplicates      *prometheus.CounterVec   // rule
	refused         *prometheus.CounterVec   // reason
	conns           *prometheus.GaugeVec     // direction
	connsClosed     *prometheus.CounterVec   // reason
	keepaliveFailed prometheus.Counter
	helloFailed     *prometheus.CounterVec // half, outcome
	dialFailures    prometheus.Counter
	streamBytes     *prometheus.CounterVec // protocol, direction

	mu    sync.Mutex
	hosts []*host.Host       // attached, for the gauges read from hosts
	open  map[connKey]string // direction of each open connection
}

// connKey names a connection in the table: ConnClosed carries the peer
// and sequence number, not the direction.
type connKey struct {
	peer peer.ID
	seq  uint64
}

// Stage labels of concord_handshakes_total beside upgrader.Stage's names.
const stageComplete = "complete"

// New returns Metrics with its collectors registered in a registry of
// its own, with the Go and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), open: map[connKey]string{}}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	f(prometheus.NewGoCollector())
	f(prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	m.handshakes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "concord_handshakes_total",
		Help: "Connection upgrades by direction, the stage they ended in (complete on success) and outcome.",
	}, []string{"direction", "stage", "outcome"})
	m.handshakeTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "concord_handshake_duration_seconds",
		Help:    "Duration of each stage of successful upgrades (simopen, security, muxer) and of the whole (total).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms to 16 s
	}, []string{"direction", "stage"})
	m.elections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "concord_elections_total",
		Help: "Simultaneous-open elections this host took part in, by the role it got and whether the peer-ID tie-break decided.",
	}, []string{"role", "tie_break"})
	m.duplicates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "concord_duplicates_resolved_total",
		Help: "Duplicate connections to one peer resolved, by rule (incarnation, sequence, probe).",
	}, []string{"rule"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "concord_admission_refused_total",
		Help: "Inbound connections refused or displaced before upgrading: limit (over an admission limit), evicted, gated.",
	}, []string{"reason"})
	m.conns = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "concord_connections",
		Help: "Connections in the host's table, by direction.",
	}, []string{"direction"})
	m.connsClosed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "concord_connections_closed_total",
		Help: "Connections that left the table, by reason (duplicate, stale, probe_failed, host_closed, keepalive, peer_or_error).",
	}, []string{"reason"})
	m.keepaliveFailed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "concord_keepalive_failures_total",
		Help: "Connections closed because the peer stopped answering keepalive pings.",
	})
	m.helloFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "concord_hello_failures_total",
		Help: "Halves of the hello exchange that failed (the connection stays up), by half (sending, receiving) and outcome (timeout, error).",
	}, []string{"half", "outcome"})
	m.dialFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "concord_dial_failures_total",
		Help: "Dials of one address that failed and put it in backoff.",
	})
	m.streamBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "concord_stream_bytes_total",
		Help: "Payload bytes on the command's ping, perf and echo streams, by protocol and direction (sent, received).",
	}, []string{"protocol", "direction"})
	for _, c := range []prometheus.Collector{m.handshakes, m.handshakeTime, m.elections, m.duplicates, m.refused,
		m.conns, m.connsClosed, m.keepaliveFailed, m.helloFailed, m.dialFailures, m.streamBytes} {
		f(c)
	}
	f(listenerCollector{m})
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "concord_streams",
		Help: "Streams open on the attached hosts' connections, both directions.",
	}, m.liveStreams))
	return m
}

// listenerCollector reads the attached hosts' listener counters
// (upgrader.ListenerStats) at each scrape: what admission did, by limit.
type listenerCollector struct{ m *Metrics }

var (
	admissionDesc = prometheus.NewDesc("concord_admission_total",
		"Inbound connections by what admission did with them: accepted, upgraded, failed, refused_in_flight, refused_per_ip, refused_subnet, refused_probation, refused_backlog, refused_gated, evicted (displaced by a newcomer with more progress), dropped (left probation for a newcomer).",
		[]string{"outcome"}, nil)
	admissionNowDesc = prometheus.NewDesc("concord_admission_slots",
		"Inbound connections held by admission now: in_flight (upgrades running) and on_probation (waiting for their first bytes).",
		[]string{"state"}, nil)
)

func (c listenerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- admissionDesc
	ch <- admissionNowDesc
}

func (c listenerCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	hosts := append([]*host.Host(nil), c.m.hosts...)
	c.m.mu.Unlock()
	var s upgrader.ListenerStats
	for _, h := range hosts {
		for _, x := range h.ListenerStats() {
			s.Accepted += x.Accepted
			s.Upgraded += x.Upgraded
			s.Failed += x.Failed
			s.RefusedInFlight += x.RefusedInFlight
			s.RefusedPerIP += x.RefusedPerIP
			s.RefusedSubnet += x.RefusedSubnet
			s.RefusedProbation += x.RefusedProbation
			s.RefusedBacklog += x.RefusedBacklog
			s.RefusedGated += x.RefusedGated
			s.Evicted += x.Evicted
			s.Dropped += x.Dropped
			s.InFlight += x.InFlight
			s.OnProbation += x.OnProbation
		}
	}
	for _, o := range []struct {
		name string
		v    uint64
	}{
		{"accepted", s.Accepted}, {"upgraded", s.Upgraded}, {"failed", s.Failed},
		{"refused_in_flight", s.RefusedInFlight}, {"refused_per_ip", s.RefusedPerIP}, {"refused_subnet", s.RefusedSubnet},
		{"refused_probation", s.RefusedProbation}, {"refused_backlog", s.RefusedBacklog}, {"refused_gated", s.RefusedGated},
		{"evicted", s.Evicted}, {"dropped", s.Dropped},
	} {
		ch <- prometheus.MustNewConstMetric(admissionDesc, prometheus.CounterValue, float64(o.v), o.name)
	}
	ch <- prometheus.MustNewConstMetric(admissionNowDesc, prometheus.GaugeValue, float64(s.InFlight), "in_flight")
	ch <- prometheus.MustNewConstMetric(admissionNowDesc, prometheus.GaugeValue, float64(s.OnProbation), "on_probation")
}

// Attach makes m read the live streams and the listener counters from h.
func (m *Metrics) Attach(h *host.Host) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hosts = append(m.hosts, h)
}

func (m *Metrics) liveStreams() float64 {
	m.mu.Lock()
	hosts := append([]*host.Host(nil), m.hosts...)
	m.mu.Unlock()
	n := 0
	for _, h := range hosts {
		for _, p := range h.Peers() {
			for _, c := range h.Conns(p) {
				n += c.NumStreams()
			}
		}
	}
	return float64(n)
}

// Observe counts one host event.
func (m *Metrics) Observe(ev host.Event) {
	switch e := ev.(type) {
	case host.UpgradeEvent:
		switch u := e.Event.(type) {
		case upgrader.UpgradeFinished:
			m.upgradeFinished(u)
		case upgrader.InboundRefused:
			reason := "limit"
			if errors.Is(u.Reason, upgrader.ErrGated) {
				reason = "gated"
			}
			m.refused.WithLabelValues(reason).Inc()
		}
	case host.ConnOpened:
		m.mu.Lock()
		m.open[connKey{e.Peer, e.Seq}] = e.Direction.String()
		m.mu.Unlock()
		m.conns.WithLabelValues(e.Direction.String()).Inc()
	case host.ConnClosed:
		m.closed(e)
	case host.DuplicateResolved:
		m.duplicates.WithLabelValues(string(e.Rule)).Inc()
	case host.KeepaliveFailed:
		m.keepaliveFailed.Inc()
	case host.HelloFailed:
		half, outcome := "receiving", "error"
		if e.Sending {
			half = "sending"
		}
		if errors.Is(e.Err, host.ErrHelloTimeout) {
			outcome = "timeout"
		}
		m.helloFailed.WithLabelValues(half, outcome).Inc()
	case host.BackoffScheduled:
		m.dialFailures.Inc()
	}
}

func (m *Metrics) upgradeFinished(u upgrader.UpgradeFinished) {
	dir := u.Direction.String()
	if u.Err != nil {
		stage := "unknown"
		var ue *upgrader.Error
		if errors.As(u.Err, &ue) {
			stage = ue.Stage.String()
		}
		m.handshakes.WithLabelValues(dir, stage, outcome(u.Err)).Inc()
		if errors.Is(u.Err, upgrader.ErrEvicted) {
			m.refused.WithLabelValues("evicted").Inc()
		}
		return
	}
	m.handshakes.WithLabelValues(dir, stageComplete, "ok").Inc()
	m.handshakeTime.WithLabelValues(dir, upgrader.StageSimopen.String()).Observe(u.Durations.Simopen.Seconds())
	m.handshakeTime.WithLabelValues(dir, upgrader.StageSecurity.String()).Observe(u.Durations.Security.Seconds())
	m.handshakeTime.WithLabelValues(dir, upgrader.StageMuxer.String()).Observe(u.Durations.Muxer.Seconds())
	m.handshakeTime.WithLabelValues(dir, "total").Observe(u.Total.Seconds())
	if u.Election != nil {
		m.elections.WithLabelValues(u.Role.String(), strconv.FormatBool(u.Election.TieBreak)).Inc()
	}
}

// outcome names why an upgrade failed, coarsely enough for a label.
func outcome(err error) string {
	switch {
	case errors.Is(err, upgrader.ErrEvicted):
		return "evicted"
	case errors.Is(err, upgrader.ErrHandshakeTimeout):
		return "timeout"
	case errors.Is(err, upgrader.ErrPeerIDMismatch):
		return "peer_id_mismatch"
	case errors.Is(err, upgrader.ErrNoCommonProtocol):
		return "no_common_protocol"
	case errors.Is(err, upgrader.ErrSimopenTie):
		return "tie"
	case errors.Is(err, upgrader.ErrGated):
		return "gated"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return "error"
}

func (m *Metrics) closed(e host.ConnClosed) {
	reason := "peer_or_error"
	switch {
	case errors.Is(e.Reason, host.ErrDuplicate):
		reason = "duplicate"
	case errors.Is(e.Reason, host.ErrStaleIncarnation):
		reason = "stale"
	case errors.Is(e.Reason, host.ErrProbeFailed):
		reason = "probe_failed"
	case errors.Is(e.Reason, host.ErrHostClosed):
		reason = "host_closed"
	case errors.Is(e.Reason, muxer.ErrKeepaliveTimeout):
		reason = "keepalive"
	}
	m.connsClosed.WithLabelValues(reason).Inc()
	k := connKey{e.Peer, e.Seq}
	m.mu.Lock()
	dir, ok := m.open[k]
	delete(m.open, k)
	m.mu.Unlock()
	if ok {
		m.conns.WithLabelValues(dir).Dec()
	}
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Serve listens on addr and serves /metrics until ctx ends or stop is
// called; stop waits for the server to close.
func (m *Metrics) Serve(ctx context.Context, addr string) (net.Addr, func(), error) {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	stopCtx := context.AfterFunc(ctx, func() { _ = srv.Close() })
	var once sync.Once
	stop := func() {
		once.Do(func() {
			stopCtx()
			_ = srv.Close()
			<-done
		})
	}
	return ln.Addr(), stop, nil
}

// Stream is what the command's protocol code reads and writes.
type Stream interface {
	io.Reader
	io.Writer
	CloseWrite() error
	Close() error
	SetDeadline(time.Time) error
}

// CountStream returns s counting its payload bytes under protocol. A nil
// m returns s itself.
func (m *Metrics) CountStream(protocol string, s Stream) Stream {
	if m == nil {
		return s
	}
	return &counted{Stream: s,
		sent: m.streamBytes.WithLabelValues(protocol, "sent"), recv: m.streamBytes.WithLabelValues(protocol, "received")}
}

type counted struct {
	Stream
	sent, recv prometheus.Counter
}

func (c *counted) Read(p []byte) (int, error) {
	n, err := c.Stream.Read(p)
	c.recv.Add(float64(n))
	return n, err
}

func (c *counted) Write(p []byte) (int, error) {
	n, err := c.Stream.Write(p)
	c.sent.Add(float64(n))
	return n, err
}

// Reset passes a reset through when the stream has one (perf and echo
// reset a stream they give up on), else closes it.
func (c *counted) Reset() error {
	if r, ok := c.Stream.(interface{ Reset() error }); ok {
		return r.Reset()
	}
	return c.Stream.Close()
}
