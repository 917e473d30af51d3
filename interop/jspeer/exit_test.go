package jspeer

import (
	"testing"

	"github.com/concordp2p/concord/interop/internal/pingexit"
)

// TestPingExitsPromptlyAgainstJS: `concord ping` against a js-libp2p
// listener, with Noise and with TLS, exits within 100 ms (the median;
// every run within 1 s: pingexit.Bound, pingexit.Ceiling) of printing its
// last reply, five runs each, measured from the moment
// the last reply line is read to the process's exit. js-libp2p does not
// close its end when Concord's go-away arrives; before the close became
// asynchronous (694b149) the dialer waited out yamux's 2 s linger here:
// with CONCORD_PING_BIN set to a build of 694b149^, 1.2–2.0 s in each of
// ten runs (8 of them 2.00–2.01 s), against 1.6–5.8 ms since.
func TestPingExitsPromptlyAgainstJS(t *testing.T) {
	bin := pingexit.Build(t)
	for _, sec := range []string{"noise", "tls"} {
		js := Listen(t, sec)
		pingexit.Check(t, bin, "js-libp2p-"+sec, js.Addr, sec, 5)
	}
}
