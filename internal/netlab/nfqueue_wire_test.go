package netlab

import (
	"encoding/binary"
	"errors"
	"testing"
)

// packetMessage builds a kernel-style NFQNL_MSG_PACKET for tests.
func packetMessage(id uint32, extra ...nlAttr) []byte {
	hdr := binary.BigEndian.AppendUint32(nil, id)
	hdr = append(hdr, 0x08, 0x00, 3) // hw_protocol ETH_P_IP, hook NF_INET_LOCAL_OUT
	attrs := append(extra, nlAttr{nfqaPacketHdr, hdr})
	return nfqMessage(nfqnlMsgPacket, 0, 0, 7, attrs...)
}

func ackMessage(seq uint32, errno int32) []byte {
	b := make([]byte, nlmsgHdrLen+4+nlmsgHdrLen)
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], nlmsgError)
	binary.NativeEndian.PutUint32(b[8:], seq)
	binary.NativeEndian.PutUint32(b[16:], uint32(errno))
	return b
}

func TestParseNetlink(t *testing.T) {
	// Two packets and an ack in one datagram, one packet with a mark
	// attribute (type 3) before its header, as the kernel may order them.
	dgram := append(packetMessage(0xdeadbeef), packetMessage(42, nlAttr{3, be32(9)})...)
	dgram = append(dgram, ackMessage(5, -16)...)
	evs, err := parseNetlink(dgram)
	if err != nil {
		t.Fatal(err)
	}
	want := []nlEvent{
		{kind: evPacket, packetID: 0xdeadbeef},
		{kind: evPacket, packetID: 42},
		{kind: evAck, seq: 5, errno: -16},
	}
	if len(evs) != len(want) {
		t.Fatalf("events = %+v, want %+v", evs, want)
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, evs[i], want[i])
		}
	}
	for name, bad := range map[string][]byte{
		"short header":     dgram[:10],
		"length too large": func() []byte { b := packetMessage(1); binary.NativeEndian.PutUint32(b, 999); return b }(),
		"length too small": func() []byte { b := packetMessage(1); binary.NativeEndian.PutUint32(b, 4); return b }(),
		"no packet header": nfqMessage(nfqnlMsgPacket, 0, 0, 0, nlAttr{3, be32(1)}),
		"short packet hdr": nfqMessage(nfqnlMsgPacket, 0, 0, 0, nlAttr{nfqaPacketHdr, be32(1)}),
		"short error":      ackMessage(1, 0)[:nlmsgHdrLen+2],
	} {
		if name == "short error" {
			binary.NativeEndian.PutUint32(bad, uint32(len(bad)))
		}
		if _, err := parseNetlink(bad); !errors.Is(err, errMalformed) {
			t.Errorf("%s: err = %v, want errMalformed", name, err)
		}
	}
}

func TestVerdictMessage(t *testing.T) {
	b := verdictMessage(513, 0x01020304)
	if got := binary.NativeEndian.Uint32(b); int(got) != len(b) || len(b) != 16+4+12 {
		t.Fatalf("length field %d, len %d; want both 32", got, len(b))
	}
	if got := binary.NativeEndian.Uint16(b[4:]); got != 3<<8|1 {
		t.Errorf("type = %#x, want NFNL_SUBSYS_QUEUE<<8|NFQNL_MSG_VERDICT = 0x301", got)
	}
	if got := binary.BigEndian.Uint16(b[18:]); got != 513 {
		t.Errorf("res_id = %d, want the queue number 513", got)
	}
	attr := b[20:]
	if l, typ := binary.NativeEndian.Uint16(attr), binary.NativeEndian.Uint16(attr[2:]); l != 12 || typ != nfqaVerdictHdr {
		t.Errorf("attribute len %d type %d, want 12, NFQA_VERDICT_HDR", l, typ)
	}
	if v, id := binary.BigEndian.Uint32(attr[4:]), binary.BigEndian.Uint32(attr[8:]); v != nfAccept || id != 0x01020304 {
		t.Errorf("verdict %d id %#x, want NF_ACCEPT (1), 0x01020304", v, id)
	}
}

// FuzzParseNetlink: the parser never panics, reports at most one event per
// 16 bytes, returns errMalformed on failure, and finds the id of any
// well-formed packet message appended to the input's valid prefix.
func FuzzParseNetlink(f *testing.F) {
	f.Add(packetMessage(7))
	f.Add(append(packetMessage(1), ackMessage(2, 0)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := parseNetlink(b)
		if len(evs) > len(b)/nlmsgHdrLen {
			t.Fatalf("%d events from %d bytes", len(evs), len(b))
		}
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v is not errMalformed", err)
			}
			return
		}
		if len(b)%4 != 0 {
			return // a valid message must start on a 4-byte boundary
		}
		more, err := parseNetlink(append(append([]byte(nil), b...), packetMessage(0x55aa)...))
		if err != nil || len(more) != len(evs)+1 || more[len(more)-1] != (nlEvent{kind: evPacket, packetID: 0x55aa}) {
			t.Fatalf("appending a packet message to a valid input: %+v, %v", more, err)
		}
	})
}
