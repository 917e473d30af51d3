package netlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestCluster builds a small cluster and checks that every host reaches
// every other over TCP, that a blackholed host is unreachable until it is
// restored, and that the namespaces are gone after Close.
func TestCluster(t *testing.T) {
	const n = 5
	start := time.Now()
	c := NewCluster(t, n, ClusterOptions{})
	t.Logf("a cluster of %d hosts in %v", n, time.Since(start))
	for _, h := range c.Hosts {
		ln := listenIn(t, h, fmt.Sprintf("%s:7000", h.Addr))
		go func() {
			for {
				cn, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { defer cn.Close(); _, _ = io.Copy(cn, cn) }()
			}
		}()
	}
	ping := func(from, to *Host, timeout time.Duration) error {
		return from.Do(func() error {
			cn, err := net.DialTimeout("tcp", fmt.Sprintf("%s:7000", to.Addr), timeout)
			if err != nil {
				return err
			}
			defer cn.Close()
			_ = cn.SetDeadline(time.Now().Add(timeout))
			if _, err := cn.Write([]byte("x")); err != nil {
				return err
			}
			var b [1]byte
			_, err = io.ReadFull(cn, b[:])
			return err
		})
	}
	for i, a := range c.Hosts {
		for j, b := range c.Hosts {
			if i != j {
				if err := ping(a, b, 2*time.Second); err != nil {
					t.Errorf("host %d to host %d: %v", i, j, err)
				}
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	restore, err := c.Hosts[2].Blackhole(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(c.Hosts[0], c.Hosts[2], 300*time.Millisecond); err == nil {
		t.Errorf("reached the blackholed host")
	}
	if err := ping(c.Hosts[0], c.Hosts[1], 2*time.Second); err != nil {
		t.Errorf("host 0 to host 1 while host 2 is blackholed: %v", err)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if err := ping(c.Hosts[0], c.Hosts[2], 2*time.Second); err != nil {
		t.Errorf("host 0 to host 2 after the blackhole: %v", err)
	}

	nss := c.Namespaces()
	if len(nss) != n+1 {
		t.Fatalf("%d namespaces, want %d", len(nss), n+1)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss {
		if _, err := os.Stat(netnsDir + "/" + ns); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s after Close: stat err = %v, want not-exist", ns, err)
		}
	}
}

// TestClusterDelayLoss checks the options: a delay line on every host adds
// twice the delay to a round trip.
func TestClusterDelayLoss(t *testing.T) {
	const d = 20 * time.Millisecond
	c := NewCluster(t, 3, ClusterOptions{Delay: d, Loss: 0.0001})
	if len(c.Delays) != 3 {
		t.Fatalf("%d delay lines, want 3", len(c.Delays))
	}
	ln := listenIn(t, c.Hosts[1], fmt.Sprintf("%s:7001", c.Hosts[1].Addr))
	go echoOne(ln)
	cn := dialFrom(t, c.Hosts[0], fmt.Sprintf("%s:7001", c.Hosts[1].Addr))
	_ = cn.SetDeadline(time.Now().Add(10 * time.Second))
	best := time.Hour
	for range 5 {
		t0 := time.Now()
		if _, err := cn.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		if _, err := io.ReadFull(cn, b[:]); err != nil {
			t.Fatal(err)
		}
		best = min(best, time.Since(t0))
	}
	if best < 2*d {
		t.Errorf("round trip %v, want at least %v", best, 2*d)
	}
	t.Logf("round trip %v with a delay line of %v on each host", best, d)
}
