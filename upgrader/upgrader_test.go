package upgrader

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/muxer/yamux"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/noise"
	"github.com/concordp2p/concord/security/tls"
	"github.com/concordp2p/concord/simopen"
)

func TestUpgradeSingleDialer(t *testing.T) {
	for _, inlined := range []bool{true, false} {
		name := map[bool]string{true: "inlined", false: "multistream"}[inlined]
		t.Run(name, func(t *testing.T) {
			var evA []Event
			ka, kb := newKey(t), newKey(t)
			cfgA, cfgB := Config{Identity: ka, Observer: func(e Event) { evA = append(evA, e) }}, Config{Identity: kb}
			if !inlined {
				na, _ := noise.New(ka, noise.Config{})
				nb, _ := noise.New(kb, noise.Config{})
				cfgA.Security = SecurityConfig{Transports: []security.Transport{stripMuxers{na}}}
				cfgB.Security = SecurityConfig{Transports: []security.Transport{stripMuxers{nb}}}
			}
			ua, ub := newUpgrader(t, cfgA), newUpgrader(t, cfgB)
			ca, cb := pipe(0)
			ra, rb := upgradePair(context.Background(), ua, ub, ca, cb, network.DirOutbound, network.DirInbound, ub.LocalPeer(), "")
			defer closeAll(ra, rb)
			if ra.err != nil || rb.err != nil {
				t.Fatalf("upgrade: dialer %v, listener %v", ra.err, rb.err)
			}
			a, b := ra.c, rb.c
			if a.RemotePeer() != ub.LocalPeer() || b.RemotePeer() != ua.LocalPeer() {
				t.Errorf("peers: a sees %s (want %s), b sees %s (want %s)", a.RemotePeer(), ub.LocalPeer(), b.RemotePeer(), ua.LocalPeer())
			}
			if a.Role() != network.RoleInitiator || b.Role() != network.RoleResponder {
				t.Errorf("roles: dialer %v, listener %v; want initiator, responder", a.Role(), b.Role())
			}
			if a.Election() != nil || b.Election() != nil {
				t.Errorf("single dialer must not hold an election: %+v %+v", a.Election(), b.Election())
			}
			if a.Security() != "/noise" || b.Security() != "/noise" || a.Muxer() != "/yamux/1.0.0" || b.Muxer() != "/yamux/1.0.0" {
				t.Errorf("protocols: a %s %s, b %s %s", a.Security(), a.Muxer(), b.Security(), b.Muxer())
			}
			if a.MuxerInlined() != inlined || b.MuxerInlined() != inlined {
				t.Errorf("MuxerInlined: a %v, b %v; want %v", a.MuxerInlined(), b.MuxerInlined(), inlined)
			}
			if !a.RemotePublicKey().Equal(kb.Public()) {
				t.Errorf("RemotePublicKey is not the listener's key")
			}
			checkEcho(t, a, b, "hello from the dialer")
			checkEcho(t, b, a, "hello from the listener")

			if len(evA) != 2 {
				t.Fatalf("dialer saw %d events, want 2 (started, finished)", len(evA))
			}
			fin, ok := evA[1].(UpgradeFinished)
			if !ok || fin.Err != nil || fin.Peer != ub.LocalPeer() || fin.Role != network.RoleInitiator || fin.MuxerInlined != inlined {
				t.Errorf("finished event = %+v", evA[1])
			}
		})
	}
}

func TestUpgradeSimultaneousOpen(t *testing.T) {
	// Both sides dialed: simopen elects exactly one initiator. Repeat to
	// cover both outcomes of the election.
	initiators := map[string]int{}
	for i := range 20 {
		ua, ub := newUpgrader(t, Config{}), newUpgrader(t, Config{})
		ca, cb := pipe(0)
		ra, rb := upgradePair(context.Background(), ua, ub, ca, cb, network.DirOutbound, network.DirOutbound, ub.LocalPeer(), ua.LocalPeer())
		if ra.err != nil || rb.err != nil {
			closeAll(ra, rb)
			t.Fatalf("run %d: upgrade: a %v, b %v", i, ra.err, rb.err)
		}
		a, b := ra.c, rb.c
		if a.Role() == b.Role() || a.Role() == network.RoleUnknown || b.Role() == network.RoleUnknown {
			t.Fatalf("run %d: roles a %v, b %v: want exactly one initiator", i, a.Role(), b.Role())
		}
		ea, eb := a.Election(), b.Election()
		if ea == nil || eb == nil || ea.Local != eb.Remote || ea.Remote != eb.Local {
			t.Fatalf("run %d: election records do not mirror: %+v %+v", i, ea, eb)
		}
		if a.Direction() != network.DirOutbound || b.Direction() != network.DirOutbound {
			t.Fatalf("run %d: directions %v %v, want outbound both", i, a.Direction(), b.Direction())
		}
		if a.Role() == network.RoleInitiator {
			initiators["a"]++
		} else {
			initiators["b"]++
		}
		checkEcho(t, a, b, "a to b")
		checkEcho(t, b, a, "b to a")
		closeAll(ra, rb)
	}
	if initiators["a"] == 0 || initiators["b"] == 0 {
		t.Errorf("in 20 elections one side always won (%v): the numbers are not random", initiators)
	}
}

func TestUpgradePeerIDMismatch(t *testing.T) {
	ua, ub := newUpgrader(t, Config{}), newUpgrader(t, Config{})
	wrong, _ := peer.IDFromPrivateKey(newKey(t))
	ca, cb := pipe(0)
	ra, rb := upgradePair(context.Background(), ua, ub, ca, cb, network.DirOutbound, network.DirInbound, wrong, "")
	defer closeAll(ra, rb)
	if ra.err == nil {
		t.Fatal("dialing the wrong peer ID succeeded")
	}
	mustStage(t, ra.err, StageSecurity, ErrPeerIDMismatch)
	var mm *security.PeerIDMismatchError
	if !errors.As(ra.err, &mm) || mm.Expected != wrong || mm.Got != ub.LocalPeer() {
		t.Errorf("mismatch error = %v, want expected %s got %s", ra.err, wrong, ub.LocalPeer())
	}
}

// fakeSecurity is a transport that only has an ID: for negotiation tests
// that never reach a handshake.
type fakeSecurity string

func (f fakeSecurity) ID() string { return string(f) }
func (f fakeSecurity) Handshake(context.Context, net.Conn, security.Params) (security.Conn, error) {
	return nil, errors.New("fakeSecurity has no handshake")
}

func TestUpgradeNoCommonSecurity(t *testing.T) {
	ua := newUpgrader(t, Config{Security: SecurityConfig{Transports: []security.Transport{fakeSecurity("/only-a")}}})
	ub := newUpgrader(t, Config{Security: SecurityConfig{Transports: []security.Transport{fakeSecurity("/only-b")}}})
	ca, cb := pipe(0)
	ra, rb := upgradePair(context.Background(), ua, ub, ca, cb, network.DirOutbound, network.DirInbound, ub.LocalPeer(), "")
	defer closeAll(ra, rb)
	mustStage(t, ra.err, StageSimopen, ErrNoCommonProtocol)
	if rb.err == nil {
		t.Fatal("listener side succeeded without a common protocol")
	}
}

func TestUpgradeSilentPeerTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUpgrader(t, Config{HandshakeTimeout: 3 * time.Second})
		for _, dir := range []network.Direction{network.DirOutbound, network.DirInbound} {
			ca, cb := pipe(0)
			go silentPeer(cb)
			start := time.Now()
			_, err := u.Upgrade(context.Background(), ca, dir, "")
			if got := time.Since(start); got != 3*time.Second {
				t.Errorf("%v: upgrade against a silent peer ended after %v, want exactly 3s", dir, got)
			}
			mustStage(t, err, StageSimopen, ErrHandshakeTimeout)
			_ = cb.Close()
		}
	})
}

func TestUpgradeStageTimeout(t *testing.T) {
	// The security stage has its own, shorter bound. The peer completes
	// simopen (it is a real upgrader) but its handshake never answers.
	synctest.Test(t, func(t *testing.T) {
		ka, kb := newKey(t), newKey(t)
		na, _ := noise.New(ka, noise.Config{})
		ua := newUpgrader(t, Config{Identity: ka, Security: SecurityConfig{Transports: []security.Transport{na}},
			StageTimeouts: StageTimeouts{Security: 2 * time.Second}})
		ub := newUpgrader(t, Config{Identity: kb, Security: SecurityConfig{Transports: []security.Transport{stall{noiseID}}}})
		ca, cb := pipe(0)
		start := time.Now()
		ra, rb := upgradePair(context.Background(), ua, ub, ca, cb, network.DirOutbound, network.DirInbound, ub.LocalPeer(), "")
		defer closeAll(ra, rb)
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("stage timeout fired after %v, want 2s", got)
		}
		mustStage(t, ra.err, StageSecurity, ErrHandshakeTimeout)
		if !errors.Is(ra.err, context.DeadlineExceeded) && !errors.Is(ra.err, ErrHandshakeTimeout) {
			t.Errorf("error %v does not say it timed out", ra.err)
		}
	})
}

const noiseID = "/noise"

// stall is a security transport whose handshake reads until its context
// ends, like a peer that stopped after protocol selection.
type stall struct{ id string }

func (s stall) ID() string { return s.id }
func (s stall) Handshake(ctx context.Context, raw net.Conn, _ security.Params) (security.Conn, error) {
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 1024)
	for {
		if _, err := raw.Read(buf); err != nil {
			_ = raw.Close()
			return nil, err
		}
	}
}

func TestUpgradeCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUpgrader(t, Config{})
		ca, cb := pipe(0)
		go silentPeer(cb)
		cause := errors.New("caller gave up")
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(500*time.Millisecond, func() { cancel(cause) })
		start := time.Now()
		_, err := u.Upgrade(ctx, ca, network.DirOutbound, "")
		if got := time.Since(start); got != 500*time.Millisecond {
			t.Errorf("cancelled upgrade returned after %v, want 500ms", got)
		}
		mustStage(t, err, StageSimopen, cause)
		if errors.Is(err, ErrHandshakeTimeout) {
			t.Errorf("a cancellation must not read as a timeout: %v", err)
		}
		_ = cb.Close()
	})
}

func TestUpgradeTricklingPeer(t *testing.T) {
	// A peer that sends one byte a second cannot hold the upgrade past
	// its deadline.
	synctest.Test(t, func(t *testing.T) {
		u := newUpgrader(t, Config{HandshakeTimeout: 4 * time.Second})
		ca, cb := pipe(0)
		done := make(chan struct{})
		go func() {
			defer close(done)
			go silentPeer(cb)
			msg := []byte("\x13/multistream/1.0.0\n\x1d/libp2p/simultaneous-connect\n")
			for _, b := range msg {
				if _, err := cb.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		}()
		start := time.Now()
		_, err := u.Upgrade(context.Background(), ca, network.DirOutbound, "")
		if got := time.Since(start); got != 4*time.Second {
			t.Errorf("trickling peer held the upgrade for %v, want 4s", got)
		}
		mustStage(t, err, StageSimopen, ErrHandshakeTimeout)
		_ = cb.Close()
		<-done
	})
}

func TestConfigValidation(t *testing.T) {
	if _, err := New(Config{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New without identity: %v, want ErrInvalidConfig", err)
	}
	k := newKey(t)
	if _, err := New(Config{Identity: k, Security: SecurityConfig{Transports: []security.Transport{}}}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("empty security list: %v, want ErrInvalidConfig", err)
	}
	if _, err := New(Config{Identity: k, Security: SecurityConfig{Transports: []security.Transport{fakeSecurity("/x"), fakeSecurity("/x")}}}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("duplicate security IDs: %v, want ErrInvalidConfig", err)
	}
	if _, err := New(Config{Identity: k, HandshakeTimeout: -time.Second}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("negative timeout: %v, want ErrInvalidConfig", err)
	}
	for name, cfg := range map[string]Config{
		"unknown security protocol": {Security: SecurityConfig{Protocols: []string{"/plaintext/2.0.0"}}},
		"empty security protocols":  {Security: SecurityConfig{Protocols: []string{}}},
		"transports and protocols": {Security: SecurityConfig{Protocols: []string{noiseID},
			Transports: []security.Transport{fakeSecurity("/x")}}},
		"transports and noise config": {Security: SecurityConfig{Noise: noise.Config{VerifiedCacheSize: 8},
			Transports: []security.Transport{fakeSecurity("/x")}}},
		"empty muxers":            {Muxer: MuxerConfig{Muxers: []muxer.Muxer{}}},
		"muxers and yamux config": {Muxer: MuxerConfig{Yamux: yamux.Config{MaxIncomingStreams: 4}, Muxers: []muxer.Muxer{}}},
		"invalid yamux config":    {Muxer: MuxerConfig{Yamux: yamux.Config{PingTimeout: -time.Second}}},
		"simopen token limit":     {Simopen: simopen.Config{MaxTokenLen: 5}},
		"simopen protocols set":   {Simopen: simopen.Config{Protocols: []string{noiseID}}},
		"simopen remote peer set": {Simopen: simopen.Config{RemotePeer: "x"}},
	} {
		cfg.Identity = k
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestLayerConfigsReachTheirLayers: each nested layer's Config takes
// effect: the security protocol list, the Noise and TLS configs (a TLS
// clock in the past makes certificates not yet valid) and simopen's token
// limit.
func TestLayerConfigsReachTheirLayers(t *testing.T) {
	u := newUpgrader(t, Config{Security: SecurityConfig{Protocols: []string{tls.ID}}, Simopen: simopen.Config{MaxTokenLen: 64}})
	if got := u.secIDs; len(got) != 1 || got[0] != tls.ID {
		t.Fatalf("security protocols %q, want only %q", got, tls.ID)
	}
	if got := u.cfg.Simopen.MaxTokenLen; got != 64 {
		t.Fatalf("simopen MaxTokenLen %d, want 64", got)
	}
	ka, kb := newKey(t), newKey(t)
	past := func() time.Time { return time.Now().Add(-24 * 365 * time.Hour) }
	ua := newUpgrader(t, Config{Identity: ka, Security: SecurityConfig{Protocols: []string{tls.ID}, TLS: tls.Config{Now: past}}})
	ub := newUpgrader(t, Config{Identity: kb, Security: SecurityConfig{Protocols: []string{tls.ID}}})
	ca, cb := pipe(0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ra, rb := upgradePair(ctx, ua, ub, ca, cb, network.DirOutbound, network.DirInbound, ub.LocalPeer(), "")
	defer closeAll(ra, rb)
	if ra.err == nil || rb.err == nil {
		t.Fatalf("upgrade with a TLS clock a year behind: errors %v and %v, want both to fail", ra.err, rb.err)
	}
}

func TestUpgradeAsFixedRoles(t *testing.T) {
	// A coordinated simultaneous dial (hole punch): both sides dialed, and
	// the caller says who leads. No election runs, whichever side is told
	// to initiate does, and the connection works both ways.
	for _, aRole := range []network.Role{network.RoleInitiator, network.RoleResponder} {
		t.Run("a "+aRole.String(), func(t *testing.T) {
			bRole := network.RoleResponder
			if aRole == network.RoleResponder {
				bRole = network.RoleInitiator
			}
			ua, ub := newUpgrader(t, Config{}), newUpgrader(t, Config{})
			ca, cb := pipe(0)
			var ra, rb upgradeResult
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				ra.c, ra.err = ua.UpgradeAs(context.Background(), ca, network.DirOutbound, aRole, ub.LocalPeer())
			}()
			go func() {
				defer wg.Done()
				rb.c, rb.err = ub.UpgradeAs(context.Background(), cb, network.DirOutbound, bRole, ua.LocalPeer())
			}()
			wg.Wait()
			defer closeAll(ra, rb)
			if ra.err != nil || rb.err != nil {
				t.Fatalf("upgrade: a %v, b %v", ra.err, rb.err)
			}
			if ra.c.Role() != aRole || rb.c.Role() != bRole {
				t.Fatalf("roles a %v, b %v; want %v, %v", ra.c.Role(), rb.c.Role(), aRole, bRole)
			}
			if ra.c.Election() != nil || rb.c.Election() != nil {
				t.Fatalf("election records %+v %+v, want none", ra.c.Election(), rb.c.Election())
			}
			if !ra.c.MuxerInlined() {
				t.Errorf("muxer not inlined with fixed roles")
			}
			checkEcho(t, ra.c, rb.c, "a to b")
			checkEcho(t, rb.c, ra.c, "b to a")
		})
	}
}

func TestUpgradeAsInitiatorMeetsPlainResponder(t *testing.T) {
	// A fixed initiator's peer that accepted the connection answers as
	// always; a fixed initiator never sends the simopen token, so even a
	// peer that would run an election (it dialed too) sees plain
	// multistream-select and answers it.
	ua, ub := newUpgrader(t, Config{}), newUpgrader(t, Config{})
	ca, cb := pipe(0)
	var ra, rb upgradeResult
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ra.c, ra.err = ua.UpgradeAs(context.Background(), ca, network.DirOutbound, network.RoleInitiator, ub.LocalPeer())
	}()
	go func() { defer wg.Done(); rb.c, rb.err = ub.Upgrade(context.Background(), cb, network.DirInbound, "") }()
	wg.Wait()
	defer closeAll(ra, rb)
	if ra.err != nil || rb.err != nil {
		t.Fatalf("upgrade: a %v, b %v", ra.err, rb.err)
	}
	checkEcho(t, ra.c, rb.c, "a to b")
}

func TestUpgradeAsInvalidRole(t *testing.T) {
	u := newUpgrader(t, Config{})
	ca, cb := pipe(0)
	defer cb.Close()
	_, err := u.UpgradeAs(context.Background(), ca, network.DirOutbound, network.Role(7), "")
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageSimopen {
		t.Fatalf("got %v, want an *Error at StageSimopen", err)
	}
}
