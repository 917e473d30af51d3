package upgrader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multistream"

	"github.com/concordp2p/concord/internal/ctxconn"
	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/simopen"
	"github.com/concordp2p/concord/transport/tcp"
)

// Upgrader turns raw connections into authenticated, multiplexed ones. It
// is safe for concurrent use; one Upgrader serves every connection of a
// host.
type Upgrader struct {
	cfg    Config
	local  peer.ID
	secIDs []string
	secBy  map[string]security.Transport
	muxIDs []string
	muxBy  map[string]muxer.Muxer
}

// New returns an Upgrader for cfg.
func New(cfg Config) (*Upgrader, error) {
	cfg, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(cfg.Identity)
	if err != nil {
		return nil, fmt.Errorf("%w: identity: %w", ErrInvalidConfig, err)
	}
	u := &Upgrader{cfg: cfg, local: id, secBy: map[string]security.Transport{}, muxBy: map[string]muxer.Muxer{}}
	for _, s := range cfg.Security.Transports {
		u.secIDs = append(u.secIDs, s.ID())
		u.secBy[s.ID()] = s
	}
	for _, m := range cfg.Muxer.Muxers {
		u.muxIDs = append(u.muxIDs, m.ID())
		u.muxBy[m.ID()] = m
	}
	return u, nil
}

// LocalPeer is the peer ID of the Upgrader's identity.
func (u *Upgrader) LocalPeer() peer.ID { return u.local }

// Upgrade runs the pipeline on raw:
//
//  1. simopen: initiator election (when both sides dialed) and the
//     multistream-select of the security protocol;
//  2. security: the Noise or TLS handshake as the elected Role, which
//     authenticates the remote peer (and must find expected, if not "");
//  3. muxer: the one agreed inside the handshake, else multistream-select
//     over the secured connection; then the session.
//
// dir says whether this side dialed raw (DirOutbound) or accepted it
// (DirInbound). The whole upgrade is bounded by Config.HandshakeTimeout and
// by ctx; cancelling ctx unblocks the stage's I/O at once. Once Upgrade has
// returned, ctx no longer affects the connection.
//
// On failure raw is closed and the error is an *Error naming the stage.
func (u *Upgrader) Upgrade(ctx context.Context, raw net.Conn, dir network.Direction, expected peer.ID) (*Conn, error) {
	return u.UpgradeAs(ctx, raw, dir, network.RoleUnknown, expected)
}

// UpgradeAs is Upgrade with the role fixed by the caller instead of elected,
// when role is not RoleUnknown: a coordinated simultaneous dial (a hole
// punch, where both sides dial and a signalling protocol has already said
// who leads) must not run the election, since the peer does not. Stage 1
// is then plain multistream-select: the initiator proposes the security
// protocols without the simopen token, the responder answers as Accept
// does. The Conn's Election is nil. RoleUnknown means Upgrade's election
// (dir DirOutbound) or responder (DirInbound).
func (u *Upgrader) UpgradeAs(ctx context.Context, raw net.Conn, dir network.Direction, role network.Role, expected peer.ID) (*Conn, error) {
	var c *Conn
	var err error
	if role != network.RoleUnknown && role != network.RoleInitiator && role != network.RoleResponder {
		err = &Error{Stage: StageSimopen, Remote: raw.RemoteAddr().String(), RemotePeer: expected,
			Err: fmt.Errorf("%w: role %v", ErrInvalidConfig, role)}
	} else {
		c, err = u.upgrade(ctx, raw, dir, role, expected, nil)
	}
	if err != nil {
		_ = raw.Close()
	}
	return c, err
}

// upgrade runs the pipeline with the role fixed (RoleUnknown: the
// direction decides, as in Upgrade); a listener passes the admission slot
// (nil otherwise), whose stage it advances.
func (u *Upgrader) upgrade(ctx context.Context, raw net.Conn, dir network.Direction, fixed network.Role, expected peer.ID, sl *slot) (*Conn, error) {
	start := time.Now()
	local, remote := multiaddrsOf(raw)
	ev := UpgradeFinished{Direction: dir, Local: local, Remote: remote, ExpectedPeer: expected}
	u.observe(UpgradeStarted{Direction: dir, Local: local, Remote: remote, ExpectedPeer: expected})
	fail := func(stage Stage, err error) (*Conn, error) {
		if (errors.Is(err, simopen.ErrNoCommonProtocol) || errors.Is(err, security.ErrNoCommonMuxer)) &&
			!errors.Is(err, ErrNoCommonProtocol) {
			err = fmt.Errorf("%w: %w", ErrNoCommonProtocol, err)
		}
		e := &Error{Stage: stage, Remote: raw.RemoteAddr().String(), RemotePeer: ev.Peer, Err: err}
		if e.RemotePeer == "" {
			e.RemotePeer = expected
		}
		ev.Err = e
		ev.Total = time.Since(start)
		u.observe(ev)
		return nil, e
	}
	if dir != network.DirOutbound && dir != network.DirInbound {
		return fail(StageSimopen, fmt.Errorf("%w: direction %v", ErrInvalidConfig, dir))
	}

	ctx, cancel := context.WithTimeoutCause(ctx, u.cfg.HandshakeTimeout, ErrHandshakeTimeout)
	defer cancel()

	// 1. simopen.
	t0 := time.Now()
	so, err := runStage(ctx, u.cfg.StageTimeouts.Simopen, func(ctx context.Context) (simopenOut, error) {
		cfg := u.cfg.Simopen
		cfg.Protocols, cfg.LocalPeer, cfg.RemotePeer, cfg.Rand = u.secIDs, u.local, expected, u.cfg.Rand
		var out simopenOut
		var err error
		switch {
		case fixed == network.RoleInitiator:
			out.res, err = selectSecurity(ctx, raw, u.secIDs)
			out.conn = raw
		case fixed == network.RoleResponder:
			out.res, out.conn, err = simopen.Accept(ctx, raw, cfg)
		case dir == network.DirOutbound:
			out.res, out.conn, err = simopen.Dial(ctx, raw, cfg)
		default:
			out.res, out.conn, err = simopen.Accept(ctx, raw, cfg)
		}
		return out, err
	})
	ev.Durations.Simopen = time.Since(t0)
	if err != nil {
		return fail(StageSimopen, err)
	}
	sres := so.res
	ev.Role, ev.Security, ev.Election = sres.Role, sres.Protocol, sres.Election

	// 2. security.
	if sl != nil {
		sl.advance(progressSecurity)
	}
	t0 = time.Now()
	st, ok := u.secBy[sres.Protocol]
	if !ok { // simopen only returns protocols we listed
		return fail(StageSecurity, fmt.Errorf("%w: simopen selected unknown %q", ErrNoCommonProtocol, sres.Protocol))
	}
	sc, err := runStage(ctx, u.cfg.StageTimeouts.Security, func(ctx context.Context) (security.Conn, error) {
		return st.Handshake(ctx, so.conn, security.Params{Role: sres.Role, ExpectedPeer: expected, Muxers: u.muxIDs})
	})
	ev.Durations.Security = time.Since(t0)
	if err != nil {
		if pe := (*simopen.PipelineError)(nil); errors.As(err, &pe) {
			// The pipelined initiator's check of the election's outcome
			// failed inside the handshake: the election failed.
			return fail(StageSimopen, err)
		}
		return fail(StageSecurity, err)
	}
	ev.Peer = sc.RemotePeer()
	if sl != nil {
		sl.advance(progressAuthenticated)
	}
	if g := u.cfg.Gater; g != nil {
		var err error
		if rg, ok := g.(RawConnGater); ok {
			err = rg.InterceptSecuredRaw(unwatched(raw), dir, sc.RemotePeer())
		} else {
			err = g.InterceptSecured(dir, sc.RemotePeer(), raw.RemoteAddr())
		}
		if err != nil {
			_ = sc.Close()
			return fail(StageSecurity, fmt.Errorf("%w: %w", ErrGated, err))
		}
	}

	// 3. muxer.
	t0 = time.Now()
	muxID, inlined := sc.Muxer(), true
	if muxID == "" {
		inlined = false
		muxID, err = runStage(ctx, u.cfg.StageTimeouts.Muxer, func(ctx context.Context) (string, error) {
			return negotiateMuxer(ctx, sc, sres.Role, u.muxIDs)
		})
		if err != nil {
			_ = sc.Close()
			ev.Durations.Muxer = time.Since(t0)
			return fail(StageMuxer, err)
		}
	}
	mx, ok := u.muxBy[muxID]
	if !ok {
		_ = sc.Close()
		return fail(StageMuxer, fmt.Errorf("%w: muxer %q agreed in the handshake is not configured", ErrNoCommonProtocol, muxID))
	}
	sess, err := mx.NewSession(sc, sres.Role)
	ev.Durations.Muxer = time.Since(t0)
	if err != nil {
		_ = sc.Close()
		return fail(StageMuxer, err)
	}
	c := &Conn{
		sess: sess, sec: sc, dir: dir, role: sres.Role, election: sres.Election,
		security: sres.Protocol, muxer: muxID, inlined: inlined, local: local, remote: remote,
		raw: unwatched(raw),
	}
	if g := u.cfg.Gater; g != nil {
		if err := g.InterceptUpgraded(c); err != nil {
			_ = sess.Close()
			return fail(StageMuxer, fmt.Errorf("%w: %w", ErrGated, err))
		}
	}
	ev.Muxer, ev.MuxerInlined = muxID, inlined
	ev.Total = time.Since(start)
	u.observe(ev)
	return c, nil
}

type simopenOut struct {
	res  simopen.Result
	conn net.Conn
}

// runStage runs f under ctx narrowed by the stage timeout d (0: none beyond
// ctx) and turns deadline and cancellation errors into the upgrade's terms:
// a passed deadline matches ErrHandshakeTimeout, a cancellation returns the
// context's cause.
func runStage[T any](ctx context.Context, d time.Duration, f func(context.Context) (T, error)) (T, error) {
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d, ErrHandshakeTimeout)
		defer cancel()
	}
	v, err := f(ctx)
	if err == nil {
		return v, nil
	}
	return v, stageError(ctx, err)
}

func stageError(ctx context.Context, err error) error {
	timedOut := errors.Is(err, ErrHandshakeTimeout) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded)
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		if errors.Is(cause, ErrHandshakeTimeout) || errors.Is(cause, context.DeadlineExceeded) {
			timedOut = true
		} else if !errors.Is(err, cause) {
			return fmt.Errorf("%w: %w", cause, err)
		} else {
			return err
		}
	}
	if timedOut && !errors.Is(err, ErrHandshakeTimeout) {
		return fmt.Errorf("%w: %w", ErrHandshakeTimeout, err)
	}
	return err
}

// selectSecurity is stage 1 for a caller-fixed initiator: plain
// multistream-select of the security protocol, in preference order,
// without the simopen token (the peer runs no election). The conn's
// deadline follows ctx meanwhile.
func selectSecurity(ctx context.Context, raw net.Conn, ids []string) (simopen.Result, error) {
	b := ctxconn.Bind(ctx, raw)
	id, err := multistream.SelectOneOf(ids, raw)
	if err != nil {
		var ns multistream.ErrNotSupported[string]
		if errors.As(err, &ns) {
			err = fmt.Errorf("%w: peer supports none of the security protocols %q", ErrNoCommonProtocol, ids)
		} else {
			err = fmt.Errorf("selecting security protocol: %w", err)
		}
	}
	if err = b.Release(err); err != nil {
		return simopen.Result{}, err
	}
	return simopen.Result{Role: network.RoleInitiator, Protocol: id}, nil
}

// negotiateMuxer runs multistream-select for the muxer over the secured
// connection: the initiator proposes in preference order, the responder
// accepts the first it supports. The connection's deadline follows ctx for
// the negotiation and is cleared afterwards.
func negotiateMuxer(ctx context.Context, sc security.Conn, role network.Role, ids []string) (string, error) {
	b := ctxconn.Bind(ctx, sc)
	id, err := selectMuxer(sc, role, ids)
	return id, b.Release(err)
}

func selectMuxer(sc security.Conn, role network.Role, ids []string) (string, error) {
	if role == network.RoleInitiator {
		id, err := multistream.SelectOneOf(ids, sc)
		if err != nil {
			var ns multistream.ErrNotSupported[string]
			if errors.As(err, &ns) {
				return "", fmt.Errorf("%w: peer supports none of the muxers %q", ErrNoCommonProtocol, ids)
			}
			return "", fmt.Errorf("selecting muxer: %w", err)
		}
		return id, nil
	}
	m := multistream.NewMultistreamMuxer[string]()
	for _, id := range ids {
		m.AddHandler(id, nil)
	}
	id, _, err := m.Negotiate(sc)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("%w: peer proposed none of the muxers %q and closed", ErrNoCommonProtocol, ids)
		}
		return "", fmt.Errorf("answering muxer proposals: %w", err)
	}
	return id, nil
}

func (u *Upgrader) observe(e Event) {
	if u.cfg.Observer != nil {
		u.cfg.Observer(e)
	}
}

// unwatched returns the connection the caller handed over: a Listener's
// upgrades run on a watchedConn around it.
func unwatched(raw net.Conn) net.Conn {
	if w, ok := raw.(*watchedConn); ok {
		return w.Conn
	}
	return raw
}

// multiaddrsOf returns raw's addresses as multiaddrs, nil where they are
// not TCP addresses (in-memory pipes in tests).
func multiaddrsOf(raw net.Conn) (local, remote ma.Multiaddr) {
	raw = unwatched(raw)
	if tc, ok := raw.(*tcp.Conn); ok {
		return tc.LocalMultiaddr(), tc.RemoteMultiaddr()
	}
	conv := func(a net.Addr) ma.Multiaddr {
		if ta, ok := a.(*net.TCPAddr); ok {
			if m, err := tcp.FromTCPAddr(ta); err == nil {
				return m
			}
		}
		return nil
	}
	return conv(raw.LocalAddr()), conv(raw.RemoteAddr())
}
