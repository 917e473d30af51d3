package tcp

import "time"

// Defaults used where a Config field is zero.
const (
	// DefaultConnectTimeout bounds a Dial (both attempts, when the dial
	// falls back to an ephemeral port).
	DefaultConnectTimeout = 5 * time.Second
	// DefaultKeepAlivePeriod is the idle time before the first TCP
	// keepalive probe and the interval between probes. It is Go's own
	// default.
	DefaultKeepAlivePeriod = 15 * time.Second
	// DefaultUserTimeout is TCP_USER_TIMEOUT: how long transmitted data
	// (or keepalive probes) may stay unacknowledged before the kernel
	// drops the connection, instead of TCP's ~15 minutes of retries.
	DefaultUserTimeout = 20 * time.Second
)

// Config configures a Transport. The zero value is the documented default
// for every field. A Transport copies its Config: changing the struct
// afterwards has no effect.
type Config struct {
	// ConnectTimeout bounds each Dial. If zero or negative, DefaultConnectTimeout
	// (5 s). The deadline of the context passed to Dial applies too; the
	// earlier one wins.
	ConnectTimeout time.Duration

	// KeepAlivePeriod sets SO_KEEPALIVE on every connection with this
	// idle time and probe interval. If zero, DefaultKeepAlivePeriod
	// (15 s). If negative, keepalive is turned off.
	KeepAlivePeriod time.Duration

	// UserTimeout sets TCP_USER_TIMEOUT on every connection (Linux only;
	// ignored elsewhere). It is rounded down to whole milliseconds. If
	// zero, DefaultUserTimeout (20 s). If negative, the option is not set
	// and the kernel's retry limits apply (~15 minutes for data).
	UserTimeout time.Duration

	// ListenBacklog is the backlog passed to listen(2): how many
	// connections may wait to be accepted. If zero, the system's default
	// (net.core.somaxconn on Linux, as the Go runtime reads it). The
	// kernel caps it at net.core.somaxconn. Negative values are invalid:
	// Listen refuses them.
	ListenBacklog int

	// DisableReuse turns off port reuse: listeners are opened without
	// SO_REUSEPORT and dials use ephemeral ports, so two peers dialing
	// each other produce two connections instead of a possible TCP
	// simultaneous open.
	DisableReuse bool

	// SharePort lets Listen bind a port on which another socket already
	// listens. By default (false) a listen port is owned: Listen fails
	// with ErrPortInUse when any socket, of any process, listens on the
	// port at the same address or an overlapping wildcard, so that no
	// other process can take a share of this node's inbound connections.
	// SO_REUSEPORT is set for dialing from the listen port, not for
	// splitting its traffic. With SharePort the kernel spreads incoming
	// connections over all the sharing listeners (Linux requires them to
	// have SO_REUSEPORT and the same user). Ignored with DisableReuse,
	// where the kernel refuses a shared port anyway; the check is made on
	// Linux only (package documentation, Limits).
	SharePort bool
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.KeepAlivePeriod == 0 {
		c.KeepAlivePeriod = DefaultKeepAlivePeriod
	}
	if c.UserTimeout == 0 {
		c.UserTimeout = DefaultUserTimeout
	}
	return c
}
