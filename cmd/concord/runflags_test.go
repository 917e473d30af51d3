package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/simopen"
	"github.com/concordp2p/concord/upgrader"
)

// TestLogEvent: every host event the brief names maps onto one log line
// with the attributes a user needs, at the level -v decides.
func TestLogEvent(t *testing.T) {
	id, err := peer.IDFromPrivateKey(mustKeyMain(t))
	if err != nil {
		t.Fatal(err)
	}
	el := &simopen.Election{Local: 7, Remote: 7, TieBreak: true}
	for _, c := range []struct {
		ev    host.Event
		level string
		want  []string
	}{
		{host.UpgradeEvent{Event: upgrader.UpgradeStarted{Direction: network.DirOutbound, ExpectedPeer: id}}, "DEBUG",
			[]string{`"msg":"dialing"`, `"peer":"` + id.ShortString() + `"`}},
		{host.UpgradeEvent{Event: upgrader.UpgradeStarted{Direction: network.DirInbound}}, "DEBUG", []string{`"msg":"accepting"`}},
		{host.UpgradeEvent{Event: upgrader.UpgradeFinished{Direction: network.DirOutbound, Peer: id, Role: network.RoleResponder,
			Election: el, Security: "/tls/1.0.0", Muxer: "/yamux/1.0.0", MuxerInlined: true}}, "DEBUG",
			[]string{`"msg":"upgraded"`, `"role":"responder"`, `"election":"7 vs 7"`, `"tie_break":true`, `"security":"/tls/1.0.0"`, `"inlined":true`}},
		{host.UpgradeEvent{Event: upgrader.UpgradeFinished{Direction: network.DirInbound,
			Err: &upgrader.Error{Stage: upgrader.StageSecurity, Err: upgrader.ErrHandshakeTimeout}}}, "INFO",
			[]string{`"msg":"upgrade failed"`, `security stage`}},
		{host.UpgradeEvent{Event: upgrader.InboundRefused{Reason: upgrader.ErrAdmissionRefused}}, "INFO", []string{`"msg":"inbound refused"`}},
		{host.ConnOpened{Peer: id, Seq: 3, Direction: network.DirInbound, Role: network.RoleInitiator, Election: el}, "INFO",
			[]string{`"msg":"connection opened"`, `"seq":3`, `"direction":"inbound"`, `"role":"initiator"`, `"election":"7 vs 7"`}},
		{host.ConnClosed{Peer: id, Seq: 3, Reason: host.ErrDuplicate, Lifetime: time.Second}, "INFO",
			[]string{`"msg":"connection closed"`, `"reason":"host: duplicate connection"`}},
		{host.DuplicateResolved{Peer: id, Rule: host.ResolvedByIncarnation, SurvivorSeq: 4, ClosedSeq: 3, Immediate: true}, "INFO",
			[]string{`"msg":"duplicate resolved"`, `"rule":"incarnation"`, `"kept_seq":4`, `"closed_seq":3`}},
		{host.KeepaliveFailed{Peer: id, Seq: 3}, "INFO", []string{`"msg":"keepalive failed"`}},
		{host.BackoffScheduled{Peer: id, Failures: 2, Err: errors.New("refused")}, "INFO", []string{`"msg":"dial failed"`, `"failures":2`}},
	} {
		var buf bytes.Buffer
		logEvent(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), c.ev)
		line := buf.String()
		if strings.Count(line, "\n") != 1 || !strings.Contains(line, `"level":"`+c.level+`"`) {
			t.Errorf("%T: logged %q, want one %s line", c.ev, line, c.level)
		}
		for _, w := range c.want {
			if !strings.Contains(line, w) {
				t.Errorf("%T: logged %q, want %s in it", c.ev, line, w)
			}
		}
	}
}

func mustKeyMain(t *testing.T) peer.PrivKey {
	t.Helper()
	k, err := peer.GenerateKey(peer.Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
