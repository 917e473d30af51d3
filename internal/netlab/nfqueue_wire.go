package netlab

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The netfilter queue protocol over netlink, as far as the delay line needs
// it. Message layout (include/uapi/linux/netlink.h, netfilter/nfnetlink.h,
// netfilter/nfnetlink_queue.h):
//
//	nlmsghdr  len u32 | type u16 | flags u16 | seq u32 | pid u32   (host order)
//	nfgenmsg  family u8 | version u8 | res_id be16 (the queue number)
//	attributes, each: len u16 | type u16 (host order) | payload, padded to 4
//
// Inside the attributes, the values of this protocol are big-endian.

// Specification constants (nfnetlink_queue.h). The names follow the C
// header.
const (
	nfnlSubsysQueue = 3 // NFNL_SUBSYS_QUEUE
	nfnetlinkV0     = 0 // NFNETLINK_V0

	nfqnlMsgPacket  = 0 // NFQNL_MSG_PACKET: kernel -> user, a queued packet
	nfqnlMsgVerdict = 1 // NFQNL_MSG_VERDICT: user -> kernel
	nfqnlMsgConfig  = 2 // NFQNL_MSG_CONFIG: user -> kernel

	nfqaPacketHdr  = 1 // NFQA_PACKET_HDR: packet_id be32 | hw_protocol be16 | hook u8
	nfqaVerdictHdr = 2 // NFQA_VERDICT_HDR: verdict be32 | id be32

	nfqaCfgCmd         = 1 // NFQA_CFG_CMD: command u8 | pad u8 | pf be16
	nfqaCfgParams      = 2 // NFQA_CFG_PARAMS: copy_range be32 | copy_mode u8 (packed)
	nfqaCfgQueueMaxlen = 3 // NFQA_CFG_QUEUE_MAXLEN: be32
	nfqaCfgMask        = 4 // NFQA_CFG_MASK: be32, which flags to change
	nfqaCfgFlags       = 5 // NFQA_CFG_FLAGS: be32

	nfqnlCfgCmdBind   = 1 // NFQNL_CFG_CMD_BIND
	nfqnlCfgCmdUnbind = 2 // NFQNL_CFG_CMD_UNBIND

	nfqnlCopyMeta = 1 // NFQNL_COPY_META: metadata only, no payload

	nfqaCfgFFailOpen = 1 << 0 // NFQA_CFG_F_FAIL_OPEN: accept, not drop, when the queue is full

	nfAccept = 1 // NF_ACCEPT

	// From netlink.h.
	nlmsgHdrLen = 16
	nlmsgError  = 2 // NLMSG_ERROR
	nlmsgDone   = 3 // NLMSG_DONE
	nlmFRequest = 0x1
	nlmFAck     = 0x4
	nlaTypeMask = 0x3fff // strips NLA_F_NESTED and NLA_F_NET_BYTEORDER
	nfgenLen    = 4
)

var errMalformed = errors.New("malformed netlink message")

func align4(n int) int { return (n + 3) &^ 3 }

// nfqMessage builds one nfqueue netlink message: header, nfgenmsg for queue,
// and attributes in the given order.
func nfqMessage(msgType uint16, flags uint16, seq uint32, queue uint16, attrs ...nlAttr) []byte {
	n := nlmsgHdrLen + nfgenLen
	for _, a := range attrs {
		n += align4(4 + len(a.data))
	}
	b := make([]byte, n)
	binary.NativeEndian.PutUint32(b[0:], uint32(n))
	binary.NativeEndian.PutUint16(b[4:], nfnlSubsysQueue<<8|msgType)
	binary.NativeEndian.PutUint16(b[6:], flags)
	binary.NativeEndian.PutUint32(b[8:], seq)
	// b[12:16] pid 0: the kernel
	b[16] = 0 // AF_UNSPEC
	b[17] = nfnetlinkV0
	binary.BigEndian.PutUint16(b[18:], queue)
	off := nlmsgHdrLen + nfgenLen
	for _, a := range attrs {
		binary.NativeEndian.PutUint16(b[off:], uint16(4+len(a.data)))
		binary.NativeEndian.PutUint16(b[off+2:], a.typ)
		copy(b[off+4:], a.data)
		off += align4(4 + len(a.data))
	}
	return b
}

type nlAttr struct {
	typ  uint16
	data []byte
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func verdictMessage(queue uint16, id uint32) []byte {
	return nfqMessage(nfqnlMsgVerdict, nlmFRequest, 0, queue,
		nlAttr{nfqaVerdictHdr, append(be32(nfAccept), be32(id)...)})
}

// nlEvent is what one netlink message from the kernel means to the delay
// line.
type nlEvent struct {
	kind     nlEventKind
	packetID uint32 // for evPacket
	seq      uint32 // for evAck
	errno    int32  // for evAck: 0 for an acknowledgement, else -errno
}

type nlEventKind uint8

const (
	evOther nlEventKind = iota
	evPacket
	evAck
)

// parseNetlink splits a datagram from the netlink socket into events. Each
// message must be complete and well-formed; a packet message must carry
// NFQA_PACKET_HDR. Messages of other types are reported as evOther.
func parseNetlink(b []byte) ([]nlEvent, error) {
	var evs []nlEvent
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return evs, fmt.Errorf("%w: %d bytes left, shorter than a header", errMalformed, len(b))
		}
		n := int(binary.NativeEndian.Uint32(b[0:]))
		if n < nlmsgHdrLen || n > len(b) {
			return evs, fmt.Errorf("%w: length %d with %d bytes left", errMalformed, n, len(b))
		}
		typ := binary.NativeEndian.Uint16(b[4:])
		seq := binary.NativeEndian.Uint32(b[8:])
		body := b[nlmsgHdrLen:n]
		switch {
		case typ == nlmsgError:
			if len(body) < 4 {
				return evs, fmt.Errorf("%w: NLMSG_ERROR of %d bytes", errMalformed, len(body))
			}
			evs = append(evs, nlEvent{kind: evAck, seq: seq, errno: int32(binary.NativeEndian.Uint32(body))})
		case typ == nfnlSubsysQueue<<8|nfqnlMsgPacket:
			id, err := packetID(body)
			if err != nil {
				return evs, err
			}
			evs = append(evs, nlEvent{kind: evPacket, packetID: id})
		default:
			evs = append(evs, nlEvent{kind: evOther})
		}
		if align4(n) >= len(b) {
			break
		}
		b = b[align4(n):]
	}
	return evs, nil
}

// packetID finds NFQA_PACKET_HDR in a packet message's body (nfgenmsg and
// attributes) and returns the packet id.
func packetID(body []byte) (uint32, error) {
	if len(body) < nfgenLen {
		return 0, fmt.Errorf("%w: packet message without nfgenmsg", errMalformed)
	}
	attrs := body[nfgenLen:]
	for len(attrs) >= 4 {
		l := int(binary.NativeEndian.Uint16(attrs[0:]))
		t := binary.NativeEndian.Uint16(attrs[2:]) & nlaTypeMask
		if l < 4 || l > len(attrs) {
			return 0, fmt.Errorf("%w: attribute length %d with %d bytes left", errMalformed, l, len(attrs))
		}
		if t == nfqaPacketHdr {
			if l < 4+7 {
				return 0, fmt.Errorf("%w: NFQA_PACKET_HDR of %d bytes", errMalformed, l-4)
			}
			return binary.BigEndian.Uint32(attrs[4:]), nil
		}
		if align4(l) >= len(attrs) {
			break
		}
		attrs = attrs[align4(l):]
	}
	return 0, fmt.Errorf("%w: packet message without NFQA_PACKET_HDR", errMalformed)
}
