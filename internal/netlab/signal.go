package netlab

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// The registry of live pairs exists for one reason: when the test binary is
// interrupted (SIGINT from a terminal, SIGTERM from a supervisor), t.Cleanup
// functions never run, so netlab removes what it created itself and then
// lets the signal take its normal course.
//
// The handler goroutine runs only while at least one Pair is alive, so a
// goroutine-leak check at the end of a test binary sees nothing of it.
var reg struct {
	mu          sync.Mutex
	live        map[*entry]struct{}
	stop        chan struct{} // closed by unregister when the last pair goes
	done        chan struct{} // closed by the handler goroutine when it returns
	interrupted bool          // set by the handler; cleanups then leave it alone
}

func register() *entry {
	e := &entry{}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.live == nil {
		reg.live = make(map[*entry]struct{})
	}
	reg.live[e] = struct{}{}
	if reg.stop == nil && !reg.interrupted {
		reg.stop, reg.done = make(chan struct{}), make(chan struct{})
		sigc := make(chan os.Signal, 1)
		signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
		go handleSignals(sigc, reg.stop, reg.done)
	}
	return e
}

func unregister(e *entry) {
	reg.mu.Lock()
	delete(reg.live, e)
	var stop, done chan struct{}
	if len(reg.live) == 0 && reg.stop != nil && !reg.interrupted {
		stop, done = reg.stop, reg.done
		reg.stop, reg.done = nil, nil
	}
	reg.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

func handleSignals(sigc chan os.Signal, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	defer signal.Stop(sigc)
	var sig os.Signal
	select {
	case <-stop:
		return
	case sig = <-sigc:
	}
	reg.mu.Lock()
	reg.interrupted = true
	live := make([]*entry, 0, len(reg.live))
	for e := range reg.live {
		live = append(live, e)
	}
	reg.mu.Unlock()
	for _, e := range live {
		_ = e.cleanup() // best effort: the process is about to die
	}
	// Restore the default action and deliver the signal again, so the
	// process ends the way it would have without netlab.
	signal.Reset(sig)
	if s, ok := sig.(syscall.Signal); ok {
		_ = syscall.Kill(os.Getpid(), s)
	}
	time.Sleep(2 * time.Second)
	os.Exit(2)
}
