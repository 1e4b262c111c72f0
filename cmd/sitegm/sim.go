package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"sitegm/clock"
	"sitegm/clock/sim"
)

// cmdSim runs the clock discipline in simulated time: sitegm's servo and
// the linuxptp PI baseline on the same simulated receiver and oscillator.
func cmdSim(args []string) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	name := fs.String("scenario", "standard", "scenario: "+strings.Join(scenarioNames(), ", "))
	osc := fs.String("oscillator", "", "oscillator class: tcxo, ocxo, rubidium (default: the scenario's)")
	jitter := fs.Duration("pps-jitter", -1, "PPS timestamp jitter, standard deviation (default: the scenario's)")
	outage := fs.String("outage", "", "GNSS outage START:LENGTH (e.g. 2h:24h), replacing the scenario's")
	duration := fs.Duration("duration", 0, "simulated time (default: the scenario's)")
	seed := fs.Int64("seed", 1, "random seed")
	servos := fs.String("servo", "sitegm,pi", "servos to run: sitegm, pi")
	asJSON := fs.Bool("json", false, "one JSON object per servo")
	seeds := fs.Int("seeds", 1, "run seeds seed..seed+N-1 and summarise the ratios (median, worst)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sc, err := sim.ScenarioByName(*name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sitegm sim:", err)
		return 2
	}
	if *osc != "" {
		o, err := clock.OscillatorByName(*osc)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sitegm sim:", err)
			return 2
		}
		sc.Osc, sc.ServoOsc = o, o
	}
	if *jitter >= 0 {
		sc.PPSJitter = *jitter
	}
	if *outage != "" {
		a, b, ok := strings.Cut(*outage, ":")
		st, err1 := time.ParseDuration(a)
		ln, err2 := time.ParseDuration(b)
		if !ok || err1 != nil || err2 != nil || st < 0 || ln <= 0 {
			fmt.Fprintln(os.Stderr, "sitegm sim: --outage wants START:LENGTH, e.g. 2h:24h")
			return 2
		}
		sc.Faults = []sim.Fault{{Kind: sim.FaultOutage, Start: st, Length: ln}}
		if *duration == 0 && st+ln+10*time.Minute > sc.Duration {
			sc.Duration = st + ln + 10*time.Minute
		}
	}
	if *duration > 0 {
		sc.Duration = *duration
	}
	sc.Seed = *seed
	logrus.SetLevel(logrus.ErrorLevel) // the baseline logs through logrus
	if *seeds > 1 {
		return simSeeds(sc, *seeds)
	}
	var results []sim.Result
	for _, s := range strings.Split(*servos, ",") {
		internal := map[string]string{"sitegm": "kalman", "pi": "pi"}[s]
		if internal == "" {
			fmt.Fprintf(os.Stderr, "sitegm sim: unknown servo %q (sitegm, pi)\n", s)
			return 2
		}
		r := sim.Run(sc, internal)
		r.Servo = s
		results = append(results, r)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, r := range results {
			enc.Encode(r)
		}
		return 0
	}
	fmt.Printf("scenario %s: oscillator %s, PPS jitter %v, %v simulated, seed %d\n", sc.Name, sc.Osc.Name, sc.PPSJitter, sc.Duration, sc.Seed)
	fmt.Printf("%-7s %10s %10s %9s %12s %12s %12s %s\n", "servo", "rms TE", "max TE", "lock", "TE 1h out", "TE 4h out", "TE 24h out", "clockClass")
	for _, r := range results {
		fmt.Printf("%-7s %10s %10s %9s %12s %12s %12s %s\n", r.Servo, ns(r.RMSTE), ns(r.MaxTE), secs(r.LockTime),
			ns(r.HoldoverTE["1h"]), ns(r.HoldoverTE["4h"]), ns(r.HoldoverTE["24h"]), classes(r.ClockClass))
	}
	if len(results) == 2 {
		a, b := results[0], results[1]
		fmt.Printf("ratio %s/%s: rms TE %s, TE 1h into the outage %s\n", a.Servo, b.Servo, ratio(a.RMSTE, b.RMSTE), ratio(a.HoldoverTE["1h"], b.HoldoverTE["1h"]))
	}
	if sc.Osc.Holdover4h > 0 {
		fmt.Printf("published %s holdover: %v after 4 h, %v after 24 h\n", sc.Osc.Name, sc.Osc.Holdover4h, sc.Osc.Holdover24h)
	}
	return 0
}

func scenarioNames() []string {
	var n []string
	for k := range sim.Scenarios() {
		n = append(n, k)
	}
	sortStrings(n)
	return n
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

func ns(p *float64) string {
	if p == nil {
		return "-"
	}
	return time.Duration(*p).String()
}

func secs(p *float64) string {
	if p == nil {
		return "never"
	}
	return fmt.Sprintf("%.1fs", *p)
}

func ratio(a, b *float64) string {
	if a == nil || b == nil || *b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.4f", *a / *b)
}

func classes(c [][2]float64) string {
	var s []string
	for _, x := range c {
		s = append(s, fmt.Sprintf("%d@%s", int(x[1]), (time.Duration(x[0]*float64(time.Second))).Round(time.Second)))
	}
	return strings.Join(s, " ")
}

// simSeeds runs both servos over many seeds and prints, per figure, the
// median and worst ratio sitegm/pi and sitegm's worst holdover error.
func simSeeds(sc sim.Scenario, n int) int {
	type figs struct{ rms, h1, h4, h24, lock []float64 }
	var ratios figs
	var abs figs
	for i := 0; i < n; i++ {
		sc.Seed += int64(min(i, 1))
		k, p := sim.Run(sc, "kalman"), sim.Run(sc, "pi")
		add := func(dst *[]float64, a, b *float64) {
			if a != nil && b != nil && *b > 0 {
				*dst = append(*dst, *a / *b)
			}
		}
		add(&ratios.rms, k.RMSTE, p.RMSTE)
		add(&ratios.h1, k.HoldoverTE["1h"], p.HoldoverTE["1h"])
		for _, x := range []struct {
			dst *[]float64
			v   *float64
		}{{&abs.h4, k.HoldoverTE["4h"]}, {&abs.h24, k.HoldoverTE["24h"]}, {&abs.lock, k.LockTime}, {&abs.rms, k.RMSTE}} {
			if x.v != nil {
				*x.dst = append(*x.dst, *x.v)
			}
		}
	}
	med := func(v []float64) (m, worst float64) {
		if len(v) == 0 {
			return 0, 0
		}
		s := append([]float64(nil), v...)
		for i := range s {
			for j := i + 1; j < len(s); j++ {
				if s[j] < s[i] {
					s[i], s[j] = s[j], s[i]
				}
			}
		}
		return s[len(s)/2], s[len(s)-1]
	}
	fmt.Printf("scenario %s, oscillator %s, %d seeds from %d\n", sc.Name, sc.Osc.Name, n, sc.Seed-int64(n-1))
	m, w := med(ratios.rms)
	fmt.Printf("steady RMS TE ratio sitegm/pi: median %.3f, worst %.3f\n", m, w)
	m, w = med(ratios.h1)
	fmt.Printf("TE 1h into the outage, ratio sitegm/pi: median %.4f, worst %.4f\n", m, w)
	m, w = med(abs.rms)
	fmt.Printf("sitegm steady RMS TE: median %.1f ns, worst %.1f ns\n", m, w)
	m, w = med(abs.lock)
	fmt.Printf("sitegm lock time: median %.1f s, worst %.1f s\n", m, w)
	m, w = med(abs.h4)
	fmt.Printf("sitegm TE 4h into the outage: median %v, worst %v (published %s: %v)\n", time.Duration(m), time.Duration(w), sc.Osc.Name, sc.Osc.Holdover4h)
	m, w = med(abs.h24)
	fmt.Printf("sitegm TE 24h into the outage: median %v, worst %v (published %s: %v)\n", time.Duration(m), time.Duration(w), sc.Osc.Name, sc.Osc.Holdover24h)
	return 0
}
