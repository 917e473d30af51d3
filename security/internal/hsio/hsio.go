// Package hsio holds the connection plumbing both security handshakes share:
// binding a context to a raw connection's deadline.
package hsio

import (
	"context"
	"net"
	"time"
)

// aLongTimeAgo is a deadline that has always passed.
var aLongTimeAgo = time.Unix(1, 0)

// Watch makes ctx's end unblock c's I/O: when ctx is done, a past deadline
// is set on c. The returned stop detaches the watch and reports whether ctx
// ended first, in which case the deadline has been set (or is being set;
// stop waits for it) and c must not be used as if nothing happened. After
// stop returns, ctx no longer affects c.
func Watch(ctx context.Context, c net.Conn) (stop func() (fired bool)) {
	done := make(chan struct{})
	stopFn := context.AfterFunc(ctx, func() {
		defer close(done)
		_ = c.SetDeadline(aLongTimeAgo)
	})
	return func() bool {
		if stopFn() {
			return false
		}
		<-done
		return true
	}
}
