package server_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// subscribeHold is a TCP proxy in front of an MQTT broker that holds a
// client's first SUBSCRIBE until release is called (what the client sends
// after it passes: as if the SUBSCRIBE were sent late): the window
// between a device's CONNECT and its SUBSCRIBE, kept open on any broker
// without touching the agent (paho gives up on a SUBACK after 10 s and
// the link subscribes again: only the first SUBSCRIBE is held). Once it
// holds the SUBSCRIBE it sends the broker a PINGREQ on the client's
// connection and waits for the PINGRESP, so that when held is closed the
// broker has handled the CONNECT completely (NATS restores the session's
// subscriptions just after sending CONNACK).
type subscribeHold struct {
	ln      net.Listener
	target  string
	held    chan struct{}
	release func()

	mu      sync.Mutex
	conns   []net.Conn
	pinged  bool // the barrier PINGREQ was sent
	barrier chan struct{}
	stop    chan struct{} // closed when the test ends
}

const (
	mqttSubscribe = 8
	mqttPingReq   = 12
	mqttPingResp  = 13
)

func startSubscribeHold(t *testing.T, target string) *subscribeHold {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rel := make(chan struct{})
	var once sync.Once
	p := &subscribeHold{ln: ln, target: target, held: make(chan struct{}), barrier: make(chan struct{}), stop: make(chan struct{}),
		release: func() { once.Do(func() { close(rel) }) }}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c, rel)
		}
	}()
	t.Cleanup(func() {
		close(p.stop)
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

// URL is the proxy's plain MQTT URL.
func (p *subscribeHold) URL() string { return "mqtt://" + p.ln.Addr().String() }

// readPacket reads one MQTT packet: its type and all its bytes.
func readPacket(r *bufio.Reader) (byte, []byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	pkt := []byte{first}
	n, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return 0, nil, errors.New("remaining length over 4 bytes")
		}
		b, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		pkt = append(pkt, b)
		n += int(b&0x7f) * mult
		mult *= 128
		if b&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return first >> 4, append(pkt, body...), nil
}

func (p *subscribeHold) serve(client net.Conn, rel <-chan struct{}) {
	upstream, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, client, upstream)
	p.mu.Unlock()
	var wmu sync.Mutex // client → broker writes: the client's and the barrier's
	write := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_, err := upstream.Write(b)
		return err
	}
	go func() { // broker → client, watching for the barrier's PINGRESP
		defer client.Close()
		r := bufio.NewReader(upstream)
		for {
			typ, pkt, err := readPacket(r)
			if err != nil {
				return
			}
			p.mu.Lock()
			if typ == mqttPingResp && p.pinged {
				select {
				case <-p.barrier:
				default:
					close(p.barrier)
				}
			}
			p.mu.Unlock()
			if _, err := client.Write(pkt); err != nil {
				return
			}
		}
	}()
	defer upstream.Close()
	r := bufio.NewReader(client)
	for {
		typ, pkt, err := readPacket(r)
		if err != nil {
			return
		}
		p.mu.Lock()
		hold := typ == mqttSubscribe && !p.pinged
		if hold {
			p.pinged = true
		}
		p.mu.Unlock()
		if !hold {
			if err := write(pkt); err != nil {
				return
			}
			continue
		}
		if err := write([]byte{mqttPingReq << 4, 0}); err != nil {
			return
		}
		go func() { // the SUBSCRIBE alone waits; what the client sends later passes
			select {
			case <-p.barrier:
			case <-p.stop:
				return
			}
			close(p.held)
			select {
			case <-rel:
				write(pkt)
			case <-p.stop:
			}
		}()
	}
}
