package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"sitegm/hw/gnss"
	"sitegm/hw/gnss/ubx"
	"sitegm/hw/gnss/ubxcfg"
	"sitegm/hw/serial"
)

// ubxPort is the receiver's serial port during configuration.
type ubxPort struct {
	f      *os.File
	w      io.Writer // f; a test's receiver
	path   string
	baud   int
	frames chan gnss.Frame
	done   chan struct{}
	// answerWait is how long a frame's answer is waited for before the
	// frame is sent once more; lateWait how long an answer still owed
	// to a frame sent twice is waited for before the next step.
	answerWait, lateWait time.Duration
	after                func(time.Duration) <-chan time.Time // time.After; a test's waits
}

func openUBXPort(path string, baud int) (*ubxPort, error) {
	f, err := serial.Open(path, baud)
	if err != nil {
		return nil, err
	}
	p := newUBXPort(f)
	p.f, p.path, p.baud = f, path, baud
	go p.read()
	return p, nil
}

func newUBXPort(w io.Writer) *ubxPort {
	return &ubxPort{w: w, frames: make(chan gnss.Frame, 256), done: make(chan struct{}),
		answerWait: 1500 * time.Millisecond, lateWait: 3 * time.Second, after: time.After}
}

// read frames what the receiver sends; answers are picked out of its
// navigation output by send and version.
func (p *ubxPort) read() {
	defer close(p.done)
	fr := gnss.NewFramer(func(f *gnss.Frame) {
		if f.Kind != gnss.FrameUBX || (f.Class != ubx.ClassACK && f.Class != ubx.ClassMON && !isValget(f)) {
			return // ACK, MON and CFG-VALGET answers are all we wait for
		}
		c := *f
		c.Data = append([]byte(nil), f.Data...)
		select {
		case p.frames <- c:
		default:
		}
	})
	buf := make([]byte, 4096)
	for {
		n, err := p.f.Read(buf)
		if n > 0 {
			fr.Write(buf[:n], time.Now())
		}
		if err != nil {
			return
		}
	}
}

func isValget(f *gnss.Frame) bool { return f.Class == ubx.ClassCFG && f.ID == ubx.CfgVALGET }

func (p *ubxPort) reopen(baud int) error {
	serial.Drain(p.f)
	time.Sleep(100 * time.Millisecond) // the receiver switches after its answer
	p.f.Close()
	<-p.done
	np, err := openUBXPort(p.path, baud)
	if err != nil {
		return err
	}
	*p = *np
	return nil
}

// drain waits until what was written has left the port.
func (p *ubxPort) drain() {
	if p.f != nil {
		serial.Drain(p.f)
	}
}

// version polls MON-VER, three times a second apart at most. A receiver
// that does not answer the first may have UBX output off (set to NMEA
// only): UBX output is switched on in RAM (nothing saved) before the
// next.
func (p *ubxPort) version(wake bool) (ubxcfg.ReceiverVersion, error) {
	for try := 0; try < 3; try++ {
		if try == 1 && wake {
			fmt.Printf("no answer to UBX-MON-VER: switching UBX output on (in RAM) and asking again\n")
			if _, err := p.w.Write(ubxcfg.WakeUBX(p.baud)); err != nil {
				return ubxcfg.ReceiverVersion{}, err
			}
			time.Sleep(200 * time.Millisecond)
		}
		if _, err := p.w.Write(ubxcfg.MonVerPoll()); err != nil {
			return ubxcfg.ReceiverVersion{}, err
		}
		deadline := time.After(time.Second)
	wait:
		for {
			select {
			case f := <-p.frames:
				if ubxcfg.IsMonVer(&f) {
					if v, ok := ubxcfg.DecodeMonVer(f.Data); ok {
						return v, nil
					}
				}
			case <-deadline:
				break wait
			}
		}
	}
	if !wake {
		return ubxcfg.ReceiverVersion{}, errors.New("no UBX-MON-VER answer (UBX output may be off: a dry run does not switch it on; give --generation)")
	}
	return ubxcfg.ReceiverVersion{}, errors.New("no UBX-MON-VER answer: not a u-blox receiver, another baud rate, or UBX input switched off")
}

// send writes one step and says what became of it: "ok", "REFUSED"
// (ACK-NAK), "NOT SET" (acknowledged, but a key reads back another value:
// held is what the receiver holds), "UNCONFIRMED" (acknowledged, the
// read-back unanswered), "NO ANSWER", or "sent" when no answer can come.
//
// An answer carries no sequence number, only the class and ID of what
// it answers, and on generation 9 every step is a CFG-VALSET: one answer
// taken for the wrong step would shift every report after it by one (a
// refused setting reported ok). So each exchange (ask) drops what came
// before it, and waits for every answer a resent frame may still get;
// and a CFG-VALSET is confirmed by reading its keys back (CFG-VALGET),
// whose answer names them, so that what is reported is what the
// receiver holds.
func (p *ubxPort) send(st ubxcfg.ConfigStep) (res string, held []ubxcfg.KeyValue) {
	if st.NoAck {
		if _, err := p.w.Write(st.Frame); err != nil {
			return "NO ANSWER", nil
		}
		p.drain()
		return "sent", nil
	}
	// The answer to a rate change may be lost in the change: it is sent
	// once, and whether it took is checked at the new rate.
	res = p.ask(st.Frame, st.NewBaud != 0, func(f *gnss.Frame) string {
		if a, ok := ubxcfg.DecodeAck(f); ok && a.Class == st.Class && a.ID == st.ID {
			return map[bool]string{true: "ok", false: "REFUSED"}[a.OK]
		}
		return ""
	})
	switch {
	case res == "" && st.NewBaud != 0:
		return "sent", nil
	case len(st.Keys) > 0 && st.NewBaud == 0 && res != "REFUSED":
		// Only an acknowledged or unanswered step is read back: a
		// refusal stands even where RAM already held the values (a
		// save to flash that failed).
		res, held = p.confirm(st, res)
	}
	if res == "" {
		res = "NO ANSWER"
	}
	return res, held
}

// confirm reads st's keys back from the configuration in effect (layer
// RAM): "ok" when each holds what was set, "NOT SET" when one does not,
// "REFUSED" when the receiver refuses the read (its firmware lacks a
// key; a VALSET naming it was refused whole). A read not answered is
// "UNCONFIRMED" whatever the acknowledgement said, which may have been
// another step's: a setting is reported ok only once the receiver has
// said it holds it; the one not answered at all stays "NO ANSWER".
func (p *ubxPort) confirm(st ubxcfg.ConfigStep, acked string) (string, []ubxcfg.KeyValue) {
	keys := make([]uint32, len(st.Keys))
	for i, kv := range st.Keys {
		keys[i] = kv.Key
	}
	var held []ubxcfg.KeyValue
	res := p.ask(ubxcfg.AppendValgetPoll(nil, ubxcfg.GetRAM, keys...), false, func(f *gnss.Frame) string {
		if a, ok := ubxcfg.DecodeAck(f); ok && !a.OK && a.Class == ubx.ClassCFG && a.ID == ubx.CfgVALGET {
			return "REFUSED"
		}
		if !isValget(f) {
			return ""
		}
		layer, kv, ok := ubxcfg.DecodeValgetAnswer(f.Data)
		if !ok || layer != ubxcfg.GetRAM || len(kv) != len(keys) {
			return ""
		}
		for i := range kv {
			if kv[i].Key != keys[i] {
				return "" // the answer to another read
			}
		}
		held = kv
		return "read"
	})
	switch {
	case res == "" && acked == "":
		return "NO ANSWER", nil
	case res == "":
		return "UNCONFIRMED", nil
	case res == "REFUSED":
		return res, nil
	}
	if len(differences(st.Keys, held)) > 0 {
		return "NOT SET", held
	}
	return "ok", nil
}

// differences names each key whose value read back (held) is not the one
// set (want).
func differences(want, held []ubxcfg.KeyValue) []string {
	var d []string
	for i := range held {
		if i < len(want) && held[i].Value != want[i].Value {
			name, _ := ubxcfg.ConfigKeyName(held[i].Key)
			d = append(d, fmt.Sprintf("%s holds %d, not %d", name, held[i].Value, want[i].Value))
		}
	}
	return d
}

// ask sends frame and returns the first answer match recognises ("" for
// one that is not this frame's), or "" when none came. What arrived
// before is dropped: no earlier exchange is waiting for it. A frame not
// answered within answerWait is sent once more (unless once): a byte
// lost on the line, or a receiver busy with its output; a setting
// applied twice is the same. A frame sent twice may be answered twice:
// the answer still owed is waited for (up to lateWait), so that it is
// not taken for the next exchange's, and an answer that only comes then
// is this frame's.
func (p *ubxPort) ask(frame []byte, once bool, match func(*gnss.Frame) string) string {
	for len(p.frames) > 0 {
		<-p.frames
	}
	res, sent, answered := "", 0, 0
	for try := 0; try < 2 && res == "" && !(once && try > 0); try++ {
		if _, err := p.w.Write(frame); err != nil {
			return ""
		}
		sent++
		if res = p.await(p.answerWait, match); res != "" {
			answered++
		}
	}
	for ; answered < sent && !once; answered++ {
		a := p.await(p.lateWait, match)
		if a == "" {
			break
		}
		if res == "" {
			res = a
		}
	}
	return res
}

// await returns the first answer match recognises within d, "" if none.
// An answer already there is taken before the deadline is looked at: one
// that came in time is not lost to a deadline that passed meanwhile.
func (p *ubxPort) await(d time.Duration, match func(*gnss.Frame) string) string {
	deadline := p.after(d)
	for {
		select {
		case f := <-p.frames:
			if r := match(&f); r != "" {
				return r
			}
			continue
		default:
		}
		select {
		case f := <-p.frames:
			if r := match(&f); r != "" {
				return r
			}
		case <-deadline:
			return ""
		}
	}
}
