package metrics

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/concordp2p/concord/cmd/concord/internal/metrics/scrape"
	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/simopen"
	"github.com/concordp2p/concord/upgrader"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestExposition feeds Metrics the events of a short life and scrapes the
// result over HTTP, parsing the text format.
func TestExposition(t *testing.T) {
	m := New()
	ok := upgrader.UpgradeFinished{Direction: network.DirOutbound, Role: network.RoleInitiator,
		Election: &simopen.Election{Local: 9, Remote: 3}, Security: "/noise", Muxer: "/yamux/1.0.0",
		Durations: upgrader.StageDurations{Simopen: time.Millisecond, Security: 2 * time.Millisecond, Muxer: time.Millisecond},
		Total:     4 * time.Millisecond}
	tie := ok
	tie.Role, tie.Election = network.RoleResponder, &simopen.Election{Local: 5, Remote: 5, TieBreak: true}
	timeout := upgrader.UpgradeFinished{Direction: network.DirInbound,
		Err: &upgrader.Error{Stage: upgrader.StageSecurity, Err: upgrader.ErrHandshakeTimeout}}
	evicted := upgrader.UpgradeFinished{Direction: network.DirInbound,
		Err: &upgrader.Error{Stage: upgrader.StageSimopen, Err: upgrader.ErrEvicted}}
	for _, e := range []host.Event{
		host.UpgradeEvent{Event: ok}, host.UpgradeEvent{Event: tie}, host.UpgradeEvent{Event: timeout},
		host.UpgradeEvent{Event: evicted},
		host.UpgradeEvent{Event: upgrader.InboundRefused{Remote: &net.TCPAddr{}, Reason: fmt.Errorf("%w: per IP", upgrader.ErrAdmissionRefused)}},
		host.ConnOpened{Peer: "p", Seq: 1, Direction: network.DirOutbound},
		host.ConnOpened{Peer: "p", Seq: 2, Direction: network.DirInbound},
		host.DuplicateResolved{Peer: "p", Rule: host.ResolvedBySequence, SurvivorSeq: 2, ClosedSeq: 1},
		host.ConnClosed{Peer: "p", Seq: 1, Reason: host.ErrDuplicate},
		host.BackoffScheduled{Peer: "q", Err: errors.New("refused")},
		host.HelloFailed{Peer: "p", Seq: 2, Sending: true, Err: fmt.Errorf("%w: read: i/o timeout", host.ErrHelloTimeout)},
		host.HelloFailed{Peer: "p", Seq: 2, Err: host.ErrMalformedHello},
	} {
		m.Observe(e)
	}
	addr, stop, err := m.Serve(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	f, err := scrape.Families(t.Context(), "http://"+addr.String()+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"concord_handshakes_total", map[string]string{"direction": "outbound", "stage": "complete", "outcome": "ok"}, 2},
		{"concord_handshakes_total", map[string]string{"direction": "inbound", "stage": "security", "outcome": "timeout"}, 1},
		{"concord_handshakes_total", map[string]string{"direction": "inbound", "stage": "simopen", "outcome": "evicted"}, 1},
		{"concord_handshake_duration_seconds", map[string]string{"direction": "outbound", "stage": "total"}, 2},
		{"concord_handshake_duration_seconds", map[string]string{"direction": "outbound", "stage": "security"}, 2},
		{"concord_elections_total", map[string]string{"role": "initiator", "tie_break": "false"}, 1},
		{"concord_elections_total", map[string]string{"role": "responder", "tie_break": "true"}, 1},
		{"concord_duplicates_resolved_total", map[string]string{"rule": "sequence"}, 1},
		{"concord_admission_refused_total", map[string]string{"reason": "limit"}, 1},
		{"concord_admission_refused_total", map[string]string{"reason": "evicted"}, 1},
		{"concord_connections", map[string]string{"direction": "outbound"}, 0},
		{"concord_connections", map[string]string{"direction": "inbound"}, 1},
		{"concord_connections_closed_total", map[string]string{"reason": "duplicate"}, 1},
		{"concord_dial_failures_total", nil, 1},
		{"concord_hello_failures_total", map[string]string{"half": "sending", "outcome": "timeout"}, 1},
		{"concord_hello_failures_total", map[string]string{"half": "receiving", "outcome": "error"}, 1},
		{"concord_streams", nil, 0},
	} {
		if got, ok := scrape.Value(f, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := f["go_goroutines"]; !ok {
		t.Error("no go_goroutines: the Go collector is missing")
	}
}

// TestAdmissionFromListener: an attached host's listener counters are
// read at each scrape.
func TestAdmissionFromListener(t *testing.T) {
	m := New()
	newHost := func(listen bool) *host.Host {
		cfg := host.Config{}
		if listen {
			cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
		}
		h, err := host.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		return h
	}
	server, client := newHost(true), newHost(false)
	m.Attach(server)
	if _, err := client.Connect(t.Context(), server.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	addr, stop, err := m.Serve(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	var f map[string]*dto.MetricFamily
	// The server's upgrade may still be counting when Connect returns on
	// the client; bounded: 100 scrapes.
	for range 100 {
		if f, err = scrape.Families(t.Context(), "http://"+addr.String()+"/metrics"); err != nil {
			t.Fatal(err)
		}
		if v, _ := scrape.Value(f, "concord_admission_total", map[string]string{"outcome": "upgraded"}); v == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"concord_admission_total", map[string]string{"outcome": "accepted"}, 1},
		{"concord_admission_total", map[string]string{"outcome": "upgraded"}, 1},
		{"concord_admission_total", map[string]string{"outcome": "evicted"}, 0},
		{"concord_admission_total", map[string]string{"outcome": "refused_probation"}, 0},
		{"concord_admission_slots", map[string]string{"state": "in_flight"}, 0},
		{"concord_admission_slots", map[string]string{"state": "on_probation"}, 0},
	} {
		if got, ok := scrape.Value(f, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
}
