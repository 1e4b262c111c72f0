package udpio

import (
	"net/netip"
	"testing"
	"time"
)

func TestBatchRoundTripWithStamps(t *testing.T) {
	srv, err := Listen(Options{Port: 0, RXStamps: Software, TXStamps: Software})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := Listen(Options{Port: 0, RXStamps: Software})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	// The kernel turns software receive stamping on for everyone with a
	// deferred static key: give it a moment after the first socket asks.
	time.Sleep(50 * time.Millisecond)
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(srv.LocalPort()))
	outs := make([]Out, 10)
	for i := range outs {
		outs[i] = Out{Data: []byte{byte(i), 1, 2, 3}, To: to}
	}
	before := time.Now()
	if n, err := cli.WriteBatch(outs); err != nil || n != 10 {
		t.Fatalf("sent %d: %v", n, err)
	}
	ms := make([]Msg, MaxBatch)
	got := 0
	srv.SetReadDeadline(time.Now().Add(2 * time.Second))
	for got < 10 {
		n, err := srv.ReadBatch(ms)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms[:n] {
			if len(m.Data) != 4 || m.Data[0] != byte(got) || m.From.Port() != uint16(cli.LocalPort()) {
				t.Fatalf("datagram %d: % x from %v", got, m.Data, m.From)
			}
			if m.RX.Before(before.Add(-time.Millisecond)) || time.Since(m.RX) > time.Second {
				t.Fatalf("rx stamp %v (sent after %v)", m.RX, before)
			}
			got++
		}
	}
	// A reply with its software transmit timestamp.
	reply := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(cli.LocalPort()))
	sent := time.Now()
	if err := srv.WriteTo([]byte("sync"), reply); err != nil {
		t.Fatal(err)
	}
	tx, err := srv.TxStamp(100 * time.Millisecond)
	if err != nil {
		t.Fatalf("tx stamp: %v", err)
	}
	if d := tx.Sub(sent); d < -time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("tx stamp %v after the send", d)
	}
	if _, err := srv.TxStamp(10 * time.Millisecond); err != ErrNoTxStamp {
		t.Errorf("second read: %v", err)
	}
}

func TestReusePortSpreads(t *testing.T) {
	a, err := Listen(Options{Port: 0, ReusePort: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Listen(Options{Port: a.LocalPort(), ReusePort: true})
	if err != nil {
		t.Fatalf("second socket on the port: %v", err)
	}
	b.Close()
}

func BenchmarkReadWriteBatch(bm *testing.B) {
	srv, _ := Listen(Options{Port: 0, RXStamps: Software})
	defer srv.Close()
	cli, _ := Listen(Options{Port: 0})
	defer cli.Close()
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(srv.LocalPort()))
	outs := make([]Out, 32)
	for i := range outs {
		outs[i] = Out{Data: make([]byte, 44), To: to}
	}
	ms := make([]Msg, MaxBatch)
	bm.ReportAllocs()
	for i := 0; i < bm.N; i++ {
		cli.WriteBatch(outs)
		got := 0
		for got < len(outs) {
			n, _ := srv.ReadBatch(ms)
			got += n
		}
	}
}
