package perf_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/concordp2p/concord/host/perf"
	"github.com/concordp2p/concord/simopen/simopentest"
)

// A client uploads 3 MiB and downloads 5 MiB, here over an in-memory
// connection; a host passes a stream it negotiated for perf.ID instead.
func Example() {
	client, server := simopentest.Pipe(0)
	defer client.Close()
	ctx := context.Background()
	go perf.Serve(ctx, server)

	res, err := perf.Run(ctx, client, 3<<20, 5<<20, nil)
	if err != nil {
		fmt.Println("perf:", err)
		return
	}
	fmt.Println("uploaded", res.Uploaded, "downloaded", res.Downloaded)
	// Output: uploaded 3145728 downloaded 5242880
}

// A command that follows the test-plans perf runner prints an intermediary
// line for each Progress and a final line for the Result, whose Total
// includes the time it took to connect.
func ExampleJSONLine() {
	p := perf.Progress{Interval: 1004957645 * time.Nanosecond, IntervalUploaded: 73039872}
	line, _ := perf.JSONLine(p)
	os.Stdout.Write(line)

	res := perf.Result{Uploaded: 4382392320, Total: 60 * time.Second}
	connecting := 127230659 * time.Nanosecond
	res.Total += connecting
	line, _ = perf.JSONLine(res)
	os.Stdout.Write(line)
	// Output:
	// {"type":"intermediary","timeSeconds":1.004957645,"uploadBytes":73039872,"downloadBytes":0}
	// {"type":"final","timeSeconds":60.127230659,"uploadBytes":4382392320,"downloadBytes":0}
}
