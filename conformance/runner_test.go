package conformance

import (
	"context"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

func TestParseCaseRejects(t *testing.T) {
	for _, tt := range []struct{ json, want string }{
		{`{"id":"x","rule":"r","expect":"e","steps":[{"sned":{}}]}`, "unknown field"},
		{`{"id":"x","rule":"r","expect":"e","steps":[{"send":{},"read":{}}]}`, "2 actions"},
		{`{"id":"x","rule":"r","expect":"e","steps":[]}`, "0 steps"},
		{`{"id":"x","rule":"r","expect":"e","mode":"both","steps":[{"send":{}}]}`, "mode"},
		{`{"id":"x","rule":"r","expect":"e","steps":[{"frame":{"type":"data","flags":["PSH"]}}]}`, "flag"},
		{`{"id":"x","rule":"r","expect":"e","steps":[{"noise":{"expect":"maybe"}}]}`, "noise expect"},
		{`{"id":"x","expect":"e","steps":[{"send":{}}]}`, "needs id, rule"},
	} {
		_, err := ParseCase([]byte(tt.json))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseCase(%s) = %v, want an error containing %q", tt.json, err, tt.want)
		}
	}
}

func TestBuiltinCasesValid(t *testing.T) {
	cases, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 40 {
		t.Errorf("%d built-in cases, want at least 40", len(cases))
	}
	for _, c := range cases {
		if !strings.Contains(c.Rule, " ") {
			t.Errorf("%s: rule %q does not name a document and a section", c.ID, c.Rule)
		}
	}
}

// TestRunCancelled: cancelling Run's context ends a listen case that waits
// for a dial, as a failure, without waiting out the deadlines.
func TestRunCancelled(t *testing.T) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	r := Runner{Listener: ln, Only: regexp.MustCompile(`^simopen-dialer-opening$`),
		Trigger: func(tctx context.Context, _ ma.Multiaddr) error { cancel(); <-tctx.Done(); return nil }}
	start := time.Now()
	res, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Outcome != Fail {
		t.Fatalf("results %+v, want one failure", res)
	}
	if el := time.Since(start); el > DefaultAnswerTimeout {
		t.Errorf("Run took %v after cancellation, want well under the answer deadline", el)
	}
}

func TestDialCasesNotApplicableWithoutTarget(t *testing.T) {
	r := Runner{Only: regexp.MustCompile(`^mss-`)}
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res {
		if x.Outcome != NotApplicable || x.Observed == "" {
			t.Errorf("%s: %s %q, want n/a with a reason", x.ID, x.Outcome, x.Observed)
		}
	}
}
