package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The idle workload keeps its server end in this process and runs its
// dialing end in a child process (this program, re-executed with
// -idle-dialer), so that 10,000 connections need 10,000 descriptors in
// each process rather than 20,000 in one: the hard RLIMIT_NOFILE here is
// 20,000, and raising it needs CAP_SYS_RESOURCE. Both processes report
// their growth, and the figures are the sum: both ends of a connection.

// idleReport is what the dialing process prints: its memory before dialing
// and once its connections are idle.
type idleReport struct {
	Before, After memSample
	Err           string
}

// idleMemory: n idle connections (no stream open; each was checked with one
// echo, whose stream is closed), dialed by 8 dialers at once from a child
// process. It returns the growth of RSS, live heap and goroutine stacks
// per connection, in bytes, for both ends together, and goroutines per
// connection. With heapProf set, it writes a heap profile of the server
// end there at the peak.
func idleMemory(s stack, o *options, impl string, n int) (rssPer, heapPer, stackPer, gorPer float64, err error) {
	settle()
	before := sampleMem()
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	addr, id := s.Target()
	cmd := exec.Command(exe, "-idle-dialer", impl, "-security", o.security, "-mode", o.mode,
		"-idle-addr", addr, "-idle-peer", hex.EncodeToString([]byte(id)), "-idle-n", strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, 0, err
	}
	defer func() {
		stdin.Close() // the child closes its connections and exits
		cmd.Wait()
		waitLive(s, 0, 30*time.Second)
	}()
	var rep idleReport
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("reading the dialer's report: %w", err)
	}
	if err := json.Unmarshal(line, &rep); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("dialer's report %q: %w", line, err)
	}
	if rep.Err != "" {
		return 0, 0, 0, 0, fmt.Errorf("dialer: %s", rep.Err)
	}
	if err := waitLive(s, int64(n), 10*time.Second); err != nil {
		return 0, 0, 0, 0, err
	}
	settle() // let the echo streams' goroutines end
	after := sampleMem()
	if o.heapProf != "" {
		writeHeapProfile(o.heapProf)
	}
	if o.goroutineProf != "" {
		if f, err := os.Create(o.goroutineProf); err == nil {
			pprof.Lookup("goroutine").WriteTo(f, 1)
			f.Close()
		}
	}
	f := float64(n)
	grow := func(a, b, c, d uint64) float64 { return (float64(a) - float64(b) + float64(c) - float64(d)) / f }
	return grow(after.RSS, before.RSS, rep.After.RSS, rep.Before.RSS),
		grow(after.Heap, before.Heap, rep.After.Heap, rep.Before.Heap),
		grow(after.Stack, before.Stack, rep.After.Stack, rep.Before.Stack),
		float64(after.Goroutines-before.Goroutines+rep.After.Goroutines-rep.Before.Goroutines) / f, nil
}

// runIdleDialer is the child process of idleMemory: it dials n connections
// to the server of stack kind o.idleDialer at o.idleAddr, prints an
// idleReport on stdout, and closes them when stdin ends.
func runIdleDialer(o *options) error {
	var newStack func(*options) (stack, error)
	for _, im := range impls {
		if im.key == o.idleDialer {
			newStack = im.new
		}
	}
	if newStack == nil {
		return fmt.Errorf("-idle-dialer %q: unknown stack", o.idleDialer)
	}
	report := func(r idleReport) {
		b, _ := json.Marshal(r)
		os.Stdout.Write(append(b, '\n'))
	}
	fail := func(err error) error {
		report(idleReport{Err: err.Error()})
		return err
	}
	id, err := hex.DecodeString(o.idlePeer)
	if err != nil {
		return fail(err)
	}
	s, err := newStack(o)
	if err != nil {
		return fail(err)
	}
	if err := s.Retarget(o.idleAddr, string(id)); err != nil {
		return fail(err)
	}
	settle()
	before := sampleMem()
	conns := make([]clientConn, o.idleN)
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(o.idleN) && firstErr.Load() == nil; i = next.Add(1) - 1 {
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				c, err := dialEcho(ctx, s)
				cancel()
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return fail(*p)
	}
	settle()
	report(idleReport{Before: before, After: sampleMem()})
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	return nil
}
