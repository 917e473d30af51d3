package host

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/simopen/simopentest"
	"github.com/concordp2p/concord/upgrader"
)

// TestDialErrorNamesAddressAndStage: a server that accepts and never
// answers. When the caller's context ends first, the Connect error still
// names the address, the stage that was waiting (simopen: the
// multistream header) and the caller's cause, with the peer in one short
// form; the cancelled attempt does not count as a failure for backoff.
func TestDialErrorNamesAddressAndStage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var silent []net.Conn
		defer func() {
			for _, c := range silent {
				_ = c.Close()
			}
		}()
		a := memHost(t, Config{}, func(ctx context.Context, _ ma.Multiaddr) (net.Conn, error) {
			x, y := simopentest.Pipe(time.Millisecond)
			silent = append(silent, y) // accepted, never read or written
			return x, nil
		})
		target, err := peer.IDFromPrivateKey(mustKey(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start := time.Now()
		_, err = a.Connect(ctx, peer.AddrInfo{ID: target, Addrs: []ma.Multiaddr{fakeAddr}})
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("Connect returned after %v, want the caller's 3s", d)
		}
		var de *DialError
		var ue *upgrader.Error
		if !errors.As(err, &de) || !errors.As(err, &ue) {
			t.Fatalf("Connect = %v, want a *DialError holding the address's *upgrader.Error", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Connect = %v, want it to match the caller's context.DeadlineExceeded", err)
		}
		if len(de.Errs) != 1 || !de.Errs[0].Addr.Equal(fakeAddr) || ue.Stage != upgrader.StageSimopen {
			t.Errorf("DialError %+v, stage %v; want %v in simopen", de.Errs, ue.Stage, fakeAddr)
		}
		msg := err.Error()
		for _, want := range []string{fakeAddr.String() + ": simopen stage: ", "header", target.ShortString()} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not contain %q", msg, want)
			}
		}
		if s := target.String(); strings.Contains(msg, s[len(s)-8:]) && !strings.Contains(msg, s[len(s)-6:]) ||
			strings.Count(msg, s[len(s)-6:]) != strings.Count(msg, target.ShortString()) {
			t.Errorf("error %q abbreviates %s other than as %s", msg, target, target.ShortString())
		}
		if bo := a.Backoff(target); len(bo) != 0 {
			t.Errorf("backoff after a cancelled dial = %+v, want none", bo)
		}
	})
}
