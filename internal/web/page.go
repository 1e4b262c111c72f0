package web

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"sitegm/internal/history"
	"sitegm/internal/status"
)

// The status page: the facts of `sitegm status` and plots of the history,
// rendered on the server as HTML with inline SVG. No script, no outside
// font or stylesheet: it works on a phone over a thin link, from the
// daemon's own data only, and refreshes itself every 10 s.

// plot is one chart: lines (or a state timeline) over the span.
type plot struct {
	ID, Title string
	SVG       template.HTML
	Points    int // points drawn, for tests and the page's own caption
}

type line struct {
	label string
	unit  string
	pts   []history.Point
	band  bool // draw the min..max band of each bucket
	color string
}

var palette = []string{"#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0969da", "#57606a"}

const (
	plotW, plotH       = 640, 160
	padL, padR, padT   = 64, 8, 8
	padB               = 22
	innerW, innerH     = plotW - padL - padR, plotH - padT - padB
	timelineH          = 28
	refreshSeconds     = 10
	maxPointsInOneLine = 800
)

// human formats v of unit for an axis: seconds in ns, µs, ms or s.
func human(v float64, unit string) string {
	if unit != "s" {
		if math.Abs(v) >= 100 || v == math.Trunc(v) {
			return fmt.Sprintf("%.0f%s", v, unit)
		}
		return fmt.Sprintf("%.2g%s", v, unit)
	}
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a < 1e-6:
		return fmt.Sprintf("%.3gns", v*1e9)
	case a < 1e-3:
		return fmt.Sprintf("%.3gµs", v*1e6)
	case a < 1:
		return fmt.Sprintf("%.3gms", v*1e3)
	}
	return fmt.Sprintf("%.3gs", v)
}

// yRange is the plot's vertical range: all values when there are few,
// else the 2nd to 98th percentile widened by a tenth, so that the
// minutes of settling after a start do not flatten a day of nanoseconds.
func yRange(v []float64) (lo, hi float64) {
	if len(v) == 0 {
		return 0, 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) < 50 {
		return s[0], s[len(s)-1]
	}
	lo, hi = s[len(s)*2/100], s[len(s)*98/100]
	pad := (hi - lo) / 10
	return math.Max(s[0], lo-pad), math.Min(s[len(s)-1], hi+pad)
}

// linePlot draws lines over [now-span, now].
func linePlot(id, title string, lines []line, now time.Time, span time.Duration, hlines ...float64) plot {
	n := 0
	var vals []float64
	for _, l := range lines {
		for _, p := range l.pts {
			vals = append(vals, p.Mean())
			if l.band {
				vals = append(vals, p.Min, p.Max)
			}
			n++
		}
	}
	lo, hi := yRange(vals)
	for _, h := range hlines {
		lo, hi = math.Min(lo, h), math.Max(hi, h)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" id="%s" data-points="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`, id, n, plotW, plotH, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" class="frame"/>`, padL, padT, innerW, innerH)
	if n == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="empty">no data yet</text></svg>`, padL+innerW/2, padT+innerH/2)
		return plot{ID: id, Title: title, SVG: template.HTML(b.String())}
	}
	if hi == lo {
		hi, lo = hi+math.Max(math.Abs(hi)*0.1, 1e-9), lo-math.Max(math.Abs(lo)*0.1, 1e-9)
	}
	unit := lines[0].unit
	start := now.Add(-span)
	x := func(t time.Time) float64 {
		return padL + float64(innerW)*math.Max(0, math.Min(1, float64(t.Sub(start))/float64(span)))
	}
	// Values beyond the range (the start's settling, one wild second)
	// are drawn at its edge.
	y := func(v float64) float64 { return padT + float64(innerH)*(1-(math.Max(lo, math.Min(hi, v))-lo)/(hi-lo)) }
	for i := 0; i <= 4; i++ {
		v := lo + (hi-lo)*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/><text x="%d" y="%.1f" class="ylab">%s</text>`,
			padL, padL+innerW, y(v), y(v), padL-4, y(v)+4, template.HTMLEscapeString(human(v, unit)))
	}
	for _, h := range hlines {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="limit"/>`, padL, padL+innerW, y(h), y(h))
	}
	for i := 0; i <= 4; i++ {
		t := start.Add(span * time.Duration(i) / 4)
		anchor := ""
		if i == 4 {
			anchor = ` style="text-anchor:end"`
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="xlab"%s>%s UTC</text>`, x(t), plotH-6, anchor, t.UTC().Format("15:04"))
	}
	for i, l := range lines {
		col := l.color
		if col == "" {
			col = palette[i%len(palette)]
		}
		pts := l.pts
		if len(pts) > maxPointsInOneLine {
			pts = pts[len(pts)-maxPointsInOneLine:]
		}
		if l.band {
			var up, down []string
			for _, p := range pts {
				up = append(up, fmt.Sprintf("%.1f,%.1f", x(p.T), y(p.Max)))
				down = append([]string{fmt.Sprintf("%.1f,%.1f", x(p.T), y(p.Min))}, down...)
			}
			fmt.Fprintf(&b, `<polygon points="%s" fill="%s" class="band"/>`, strings.Join(append(up, down...), " "), col)
		}
		var ps []string
		for _, p := range pts {
			ps = append(ps, fmt.Sprintf("%.1f,%.1f", x(p.T), y(p.Mean())))
		}
		fmt.Fprintf(&b, `<polyline points="%s" stroke="%s" class="line"/>`, strings.Join(ps, " "), col)
		if len(pts) == 1 {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, x(pts[0].T), y(pts[0].Mean()), col)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="legend" fill="%s">%s</text>`, padL+6+i*150, padT+14, col, template.HTMLEscapeString(l.label))
	}
	b.WriteString(`</svg>`)
	return plot{ID: id, Title: title, SVG: template.HTML(b.String()), Points: n}
}

var stateColors = map[int]string{0: "#8c959f", 1: "#bf8700", 2: "#d1242f", 3: "#1a7f37"}
var stateNames = map[int]string{0: "FREERUN", 1: "ACQUIRING", 2: "HOLDOVER", 3: "LOCKED"}

// timeline draws the clock's state over the span as coloured segments
// (the last value of each bucket).
func timeline(pts []history.Point, now time.Time, span time.Duration) plot {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot timeline" id="clock-state-timeline" data-points="%d" viewBox="0 0 %d %d" role="img" aria-label="clock state">`, len(pts), plotW, timelineH+16)
	start := now.Add(-span)
	x := func(t time.Time) float64 {
		return padL + float64(innerW)*math.Max(0, math.Min(1, float64(t.Sub(start))/float64(span)))
	}
	for i, p := range pts {
		end := now
		if i+1 < len(pts) {
			end = pts[i+1].T
		}
		st := int(p.Last)
		fmt.Fprintf(&b, `<rect x="%.1f" y="0" width="%.1f" height="%d" fill="%s"><title>%s %s</title></rect>`,
			x(p.T), math.Max(x(end)-x(p.T), 0.5), timelineH, stateColors[st], p.T.UTC().Format("15:04:05"), stateNames[st])
	}
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" class="legend">%s</text>`,
			padL+i*110, timelineH+4, stateColors[3-i], padL+14+i*110, timelineH+13, stateNames[3-i])
	}
	b.WriteString(`</svg>`)
	return plot{ID: "clock-state-timeline", Title: "Clock state", SVG: template.HTML(b.String()), Points: len(pts)}
}

type pageData struct {
	S        *status.Status
	Now      string
	Range    string
	Plots    []plot
	Refresh  int
	Age      string
	Problems []string
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	st := s.last()
	if st == nil {
		http.Error(w, "sitegm has not published its status yet; reload in a second", http.StatusServiceUnavailable)
		return
	}
	now := s.now()
	span, rng := history.FineSpan, "1h"
	if r.URL.Query().Get("range") == "24h" {
		span, rng = history.CoarseSpan, "24h"
	}
	pts := func(name string) (string, []history.Point) { return s.hist.Points(name, now, span) }
	d := pageData{S: st, Now: now.UTC().Format("2006-01-02 15:04:05 UTC"), Range: rng, Refresh: refreshSeconds,
		Age: now.Sub(st.Time).Round(time.Second).String(), Problems: problems(st)}
	_, states := pts("clock_state")
	d.Plots = append(d.Plots, timeline(states, now, span))
	u, off := pts("clock_offset")
	_, est := pts("clock_est_error")
	d.Plots = append(d.Plots, linePlot("clock-offset", "Clock offset and estimated error", []line{
		{label: "offset", unit: u, pts: off, band: true}, {label: "estimated error", unit: u, pts: est, color: "#d1242f"}}, now, span))
	u, noise := pts("pps_noise")
	d.Plots = append(d.Plots, linePlot("pps-noise", "PPS noise (measured)", []line{{label: "noise", unit: u, pts: noise}}, now, span))
	var rates, follow, mons []line
	var warns []float64
	for _, name := range s.hist.Names() {
		u, p := pts(name)
		switch {
		case strings.HasPrefix(name, "requests/"):
			rates = append(rates, line{label: strings.TrimPrefix(name, "requests/"), unit: u, pts: p})
		case strings.HasPrefix(name, "followers/"):
			follow = append(follow, line{label: strings.TrimPrefix(name, "followers/"), unit: u, pts: p})
		case strings.HasPrefix(name, "monitor_offset/"):
			mons = append(mons, line{label: strings.TrimPrefix(name, "monitor_offset/"), unit: u, pts: p})
		}
	}
	for _, m := range st.Monitors {
		warns = append(warns, float64(m.WarnNS)/1e9, -float64(m.WarnNS)/1e9)
	}
	sort.Float64s(warns)
	if len(warns) > 2 {
		warns = []float64{warns[0], warns[len(warns)-1]} // the widest
	}
	d.Plots = append(d.Plots, linePlot("request-rates", "NTP requests and Delay_Req per second", rates, now, span))
	d.Plots = append(d.Plots, linePlot("followers", "Followers (PTP slaves, NTP clients)", follow, now, span))
	if len(st.Monitors) > 0 {
		d.Plots = append(d.Plots, linePlot("monitor-offsets", "Monitored hosts' clocks minus sitegm's (dashed: warn)", mons, now, span, warns...))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, d); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// problems lists what a site engineer should look at, worst first.
func problems(s *status.Status) []string {
	var p []string
	switch s.Clock.State {
	case "HOLDOVER":
		p = append(p, fmt.Sprintf("clock in HOLDOVER for %s (%s left)", time.Duration(s.Clock.HoldoverElapsedS*1e9).Round(time.Second),
			time.Duration(s.Clock.HoldoverRemainingS*1e9).Round(time.Second)))
	case "FREERUN", "ACQUIRING":
		p = append(p, "clock "+s.Clock.State+": not serving a believed time yet")
	}
	if s.Clock.Reference == "NTP" && s.GNSS.State != "none" {
		p = append(p, "the NTP upstreams lead the clock, not GNSS (milliseconds from UTC, PTP class 52)")
	}
	if s.GNSS.Distrusted != "" {
		p = append(p, "GNSS time not followed: "+s.GNSS.Distrusted)
	}
	if s.GNSS.State != "fix" && s.GNSS.State != "none" {
		p = append(p, "GNSS "+s.GNSS.State)
	}
	if s.GNSS.Antenna == "open" || s.GNSS.Antenna == "short" {
		p = append(p, "GNSS antenna "+s.GNSS.Antenna)
	}
	for _, port := range s.PTP {
		if m := port.Master; m != nil && m.Off {
			p = append(p, fmt.Sprintf("PTP %s: this clock and the master it yields to (%s) differ by %s, more than the limit %s: one of the two is wrong",
				port.Interface, m.Master, time.Duration(m.OffsetNS), time.Duration(m.LimitNS)))
		}
	}
	for _, m := range s.Monitors {
		switch {
		case !m.Reachable && m.Polls > 0:
			p = append(p, "monitored host "+m.Name+" does not answer")
		case m.Off && m.Peer:
			p = append(p, fmt.Sprintf("the other grandmaster %s differs by %s, more than both error bounds (%s): one of the two is wrong",
				m.Name, time.Duration(m.OffsetNS), time.Duration(m.WarnNS)))
		case m.Off:
			p = append(p, fmt.Sprintf("monitored host %s is %s off", m.Name, time.Duration(m.OffsetNS)))
		}
	}
	for _, l := range s.LostFollowers {
		p = append(p, "expected follower silent: "+l)
	}
	switch lp := s.Leap; {
	case lp.Expired && !lp.Known:
		p = append(p, fmt.Sprintf("leap second table (%s) expired %s and the receiver does not confirm the count: PTP time marked not traceable; update tzdata or gnss.leapfile", lp.Source, lp.Expires))
	case lp.Expired:
		p = append(p, fmt.Sprintf("leap second table (%s) expired %s: the receiver's count is used; update tzdata or gnss.leapfile", lp.Source, lp.Expires))
	case lp.Expires != "" && lp.DaysLeft < 28:
		p = append(p, fmt.Sprintf("leap second table (%s) expires in %d days (%s): update tzdata or gnss.leapfile", lp.Source, lp.DaysLeft, lp.Expires))
	}
	if sel := s.Selection; sel != nil && sel.Disagree {
		p = append([]string{fmt.Sprintf("GNSS disagrees with the NTP upstreams by %s: not followed, time not served as synchronized", time.Duration(sel.OffsetNS))}, p...)
	}
	return p
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"ns": func(v int64) string { return time.Duration(v).String() },
	"s": func(v float64) string {
		if v < 0 {
			return "never"
		}
		return time.Duration(v * 1e9).Round(time.Millisecond).String()
	},
	"lower": strings.ToLower,
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{{.Refresh}}">
<title>sitegm: {{.S.Summary}}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:60rem;padding:.5rem;color:#1f2328;background:#fff}
h1{font-size:1.2rem;margin:.3rem 0}h2{font-size:1rem;margin:1rem 0 .3rem}
.state{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;color:#fff;font-weight:600}
.locked{background:#1a7f37}.holdover{background:#d1242f}.acquiring{background:#bf8700}.freerun{background:#8c959f}
.problems{background:#fff1e5;border-left:4px solid #d1242f;padding:.3rem .6rem}.ok{background:#dafbe1;border-left:4px solid #1a7f37;padding:.3rem .6rem}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{text-align:left;padding:.15rem .4rem;border-bottom:1px solid #d0d7de;vertical-align:top}
.wrap{overflow-x:auto}svg.plot{width:100%;height:auto;display:block}
.frame{fill:#f6f8fa;stroke:#d0d7de}.grid{stroke:#d0d7de;stroke-width:.5}.limit{stroke:#d1242f;stroke-dasharray:4 3}
.line{fill:none;stroke-width:1.5}.band{opacity:.18}.ylab{font-size:10px;text-anchor:end;fill:#57606a}.xlab{font-size:10px;text-anchor:middle;fill:#57606a}
.legend{font-size:11px}.empty{font-size:12px;text-anchor:middle;fill:#57606a}small{color:#57606a}
</style></head><body>
<h1>sitegm <span id="clock-state" class="state {{lower .S.Clock.State}}">{{.S.Clock.State}}</span> on {{.S.Clock.Reference}} class {{.S.Clock.ClockClass}}</h1>
<p id="summary">{{.S.Summary}}<br><small>{{.Now}} · status {{.Age}} old · up {{s .S.Uptime}} · refreshes every {{.Refresh}} s · <a href="/?range=1h">1 h</a> | <a href="/?range=24h">24 h</a> · <a href="/status.json">status.json</a> · <a href="/metrics">metrics</a></small></p>
{{if .Problems}}<div class="problems" id="problems">{{range .Problems}}<div>{{.}}</div>{{end}}</div>{{else}}<div class="ok" id="problems">nothing to report</div>{{end}}

<h2>Clock and GNSS</h2>
<div class="wrap"><table id="clock">
<tr><th>clock</th><td>{{.S.Clock.Name}} {{.S.Clock.State}}, offset {{ns .S.Clock.OffsetNS}}, estimated error {{ns .S.Clock.EstErrorNS}}, {{printf "%+.3f" .S.Clock.FrequencyPPB}} ppb{{if .S.Clock.System}}; system clock {{ns .S.Clock.System.OffsetNS}} ±{{ns .S.Clock.System.EstErrorNS}}{{end}}</td></tr>
{{range .S.Clock.SlavePHCs}}<tr><th>slave PHC</th><td>{{.Device}} {{.State}}, offset {{ns .OffsetNS}}, bound {{ns .BoundNS}}, {{printf "%+.3f" .FrequencyPPB}} ppb, {{.Steps}} steps{{if .Failures}}, {{.Failures}} failures ({{.LastError}}){{end}}</td></tr>
{{end}}
<tr><th>GNSS</th><td>{{.S.GNSS.State}}, fix {{.S.GNSS.Fix}}, {{.S.GNSS.Satellites}} satellites, last report {{s .S.GNSS.LastReportAgeS}} ago, PPS {{if .S.GNSS.PPSOK}}ok{{else}}missing{{end}}</td></tr>
<tr><th>receiver</th><td>antenna {{.S.GNSS.Antenna}}, jamming {{.S.GNSS.Jamming}}{{if ge .S.GNSS.JammingIndicator 0}} ({{.S.GNSS.JammingIndicator}}/255){{end}}, spoofing {{.S.GNSS.Spoofing}}{{if .S.GNSS.TimeAccuracyNS}}, time accuracy {{ns .S.GNSS.TimeAccuracyNS}}{{end}}{{with .S.GNSS.Survey}}; survey-in {{if .Active}}in progress{{else if .Valid}}done{{end}}{{end}}</td></tr>
</table></div>

<h2>Plots, last {{.Range}}</h2>
{{range .Plots}}<figure><figcaption>{{.Title}}</figcaption>{{.SVG}}</figure>{{end}}

<h2>PTP</h2>
<div class="wrap"><table id="ptp"><tr><th>interface</th><th>profile / domain</th><th>state</th><th>timestamps</th><th>Delay_Req</th><th>PTPv1</th></tr>
{{range .S.PTP}}<tr><td>{{.Interface}}</td><td>{{.Profile}} / {{.Domain}}</td><td>{{.State}}</td><td>{{.Timestamping}}</td><td>{{.DelayReqs}}</td><td>{{with .V1}}{{.State}}, {{.DelayReqs}} Delay_Req{{else}}-{{end}}</td></tr>{{else}}<tr><td colspan="6">no PTP port</td></tr>{{end}}
</table></div>

<h2>NTP</h2>
<div class="wrap"><table id="ntp"><tr><th>interface</th><th>port</th><th>state</th><th>requests</th><th>KoD</th><th>rate-limited</th><th>interleaved</th></tr>
{{range .S.NTP}}<tr><td>{{.Interface}}</td><td>{{.Port}}</td><td>{{.State}}</td><td>{{.Requests}}</td><td>{{.KoD}}</td><td>{{.RateDropped}}</td><td>{{.Interleaved}}</td></tr>{{if .NTS}}<tr><td colspan="7">NTS: {{.NTSAnswered}} answered, {{.NTSNAKs}} NAKs, {{.NTSBad}} bad; NTS-KE {{.KESessions}} sessions, {{.KERefused}} refused, {{.KEFailed}} failed, {{.KEShed}} shed</td></tr>{{end}}{{else}}<tr><td colspan="7">no NTP interface</td></tr>{{end}}
</table></div>

<h2>Monitored clocks</h2>
<div class="wrap"><table id="monitors"><tr><th>name</th><th>host</th><th>offset</th><th>delay</th><th>stratum</th><th>reach</th><th>last answer</th><th></th></tr>
{{range .S.Monitors}}<tr><td>{{.Name}}</td><td>{{.Host}}</td><td>{{if .Answers}}{{ns .OffsetNS}}{{else}}-{{end}}</td><td>{{if .Answers}}{{ns .DelayNS}}{{end}}</td><td>{{if .Answers}}{{.Stratum}}{{end}}</td><td>{{printf "%03o" .Reach}}</td><td>{{s .AgeS}}</td><td>{{if .Off}}OFF (warn {{ns .WarnNS}}){{else if not .Reachable}}{{if .Polls}}unreachable{{end}}{{.LastError}}{{else}}ok{{end}}</td></tr>{{else}}<tr><td colspan="8">no [[monitor]] configured</td></tr>{{end}}
</table></div>

{{if .S.Upstreams}}<h2>NTP upstreams (cross-check)</h2>
<div class="wrap"><table id="upstreams"><tr><th>server</th><th>state</th><th>stratum</th><th>offset</th><th>delay</th><th>distance</th><th>reach</th><th></th></tr>
{{range .S.Upstreams}}<tr><td>{{.Name}}</td><td>{{.State}}</td><td>{{.Stratum}}</td><td>{{if ne .State "unusable"}}{{ns .OffsetNS}}{{end}}</td><td>{{if ne .State "unusable"}}{{ns .DelayNS}}{{end}}</td><td>{{if ne .State "unusable"}}{{ns .RootDistNS}}{{end}}</td><td>{{printf "%03o" .Reach}}</td><td>{{.LastError}}</td></tr>{{end}}
</table></div>
{{with .S.Selection}}<p><small>upstreams minus clock {{ns .OffsetNS}} ±{{ns .RootDistNS}}, {{.Survivors}} agree (best {{.Best}}): {{if .Disagree}}<b>DISAGREES: GNSS not followed</b>{{else}}agrees{{end}}</small></p>{{end}}{{end}}

<h2>Followers</h2>
<p><small>{{range .S.FollowerCounts}}{{.Kind}} {{.Interface}}: {{.Active}} · {{end}}{{if .S.FollowersEvicted}}{{.S.FollowersEvicted}} evicted from the table{{end}}</small></p>
<div class="wrap"><table id="followers"><tr><th>kind</th><th>interface</th><th>identity</th><th>address</th><th>requests</th><th>interval</th><th>last seen</th></tr>
{{range .S.Followers}}<tr class="follower"><td>{{.Kind}}{{if .Version}} v{{.Version}}{{end}}{{if eq .Mode 1}} symmetric{{end}}</td><td>{{.Interface}}</td><td>{{.Identity}}</td><td>{{.Address}}</td><td>{{.Requests}}{{if .KoD}} ({{.KoD}} KoD){{end}}</td><td>{{s .IntervalS}}</td><td>{{s .AgeS}} ago</td></tr>{{else}}<tr><td colspan="7">none seen yet</td></tr>{{end}}
</table></div>
</body></html>
`))
