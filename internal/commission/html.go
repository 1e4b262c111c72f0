package commission

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"time"
)

// JSON is the report as a document for the site's records and scripts
// (fields are only ever added; schema says which version).
func (r *Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// HTML is the report as one page with everything inline: styles and
// plots, no script, nothing fetched.
func (r *Report) HTML() ([]byte, error) {
	var b bytes.Buffer
	err := page.Execute(&b, view{Report: r, Plots: r.plots()})
	return b.Bytes(), err
}

type view struct {
	*Report
	Plots []template.HTML
}

func (r *Report) plots() []template.HTML {
	var out []template.HTML
	p := r.PPS
	if len(p.Edges) > 1 {
		x, y := make([]float64, len(p.Edges)), make([]float64, len(p.Edges))
		for i, e := range p.Edges {
			x[i], y[i] = float64(e.Second-p.Edges[0].Second), e.OffsetNS
		}
		if p.Disciplined {
			out = append(out, linePlot("The disciplined clock's offset from each pulse", "clock - pulse", x, y))
			out = append(out, histogram("Offsets from the pulse", y, 40))
		} else {
			res, _ := line(x, unwrapPhase(y))
			out = append(out, linePlot("Each pulse about the free-running clock's trend (jitter)", "pulse - trend", x, res))
			out = append(out, histogram("Pulse jitter", res, 40))
		}
		var qx, qy []float64
		for i, e := range p.Edges {
			if e.HasQErr {
				qx, qy = append(qx, x[i]), append(qy, e.QErrNS)
			}
		}
		if lo, hi := minMax(qy); len(qy) > 1 && hi > lo {
			out = append(out, linePlot("The receiver's sawtooth (TIM-TP qErr), taken off each pulse", "qErr", qx, qy))
		}
	}
	if h := r.PHC; h != nil && len(h.Samples) > 1 {
		x, y := make([]float64, len(h.Samples)), make([]float64, len(h.Samples))
		for i, s := range h.Samples {
			x[i], y[i] = s.T, s.OffsetNS
		}
		out = append(out, linePlot("PHC - system clock ("+h.Method+" readings; TAI-UTC taken out)", "PHC - system", x, y))
	}
	return out
}

var funcs = template.FuncMap{
	"ns":  ns,
	"dur": func(n int64) string { return time.Duration(n).String() },
	"secs": func(s float64) string {
		return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
	},
	"lower": strings.ToLower,
	"join":  strings.Join,
	"date":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"day": func(t time.Time) string {
		if t.IsZero() {
			return "not stated"
		}
		return t.UTC().Format("2006-01-02")
	},
	"pct": func(a, b int) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
	},
	"count": func(r *Report, v Verdict) int {
		n := 0
		for _, c := range r.Checks {
			if c.Verdict == v {
				n++
			}
		}
		return n
	},
}

var page = template.Must(template.New("report").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sitegm commissioning: {{.Host}} {{.Verdict}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2733;background:#f5f7fa}
main{max-width:1000px;margin:0 auto;padding:18px 22px 40px}
h1{font-size:22px;margin:4px 0 2px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #d5dbe3;padding-bottom:4px}
.sub{color:#5b6878}
.verdict{display:inline-block;padding:6px 14px;border-radius:6px;font-weight:700;font-size:18px;color:#fff;margin:10px 0}
.PASS{background:#23834a}.WARN{background:#b7791f}.FAIL{background:#c0392b}
table{border-collapse:collapse;width:100%;background:#fff;margin:4px 0}
th,td{border:1px solid #dde3ea;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef2f6;font-weight:600}
td.v{font-weight:700;color:#fff;text-align:center;width:52px}
.small{font-size:12px;color:#5b6878}
svg{background:#fff;border:1px solid #dde3ea;margin:6px 0;max-width:100%;height:auto}
svg .t{font:600 13px sans-serif;fill:#1d2733}svg .g{stroke:#e5e9ef}svg .yl{font:11px sans-serif;fill:#5b6878;text-anchor:end}
svg .xl{font:11px sans-serif;fill:#5b6878;text-anchor:middle}svg .xt,svg .yt{font:11px sans-serif;fill:#5b6878;text-anchor:middle}
svg .l{fill:none;stroke:#2563a8;stroke-width:1.2}svg .b{fill:#2563a8}
</style></head><body><main>
<h1>sitegm commissioning report</h1>
<div class="sub">{{.Host}} &middot; started {{date .Start}} &middot; {{secs .ElapsedS}} of {{secs .PlannedS}} &middot; {{.Mode}} &middot; sitegm {{.Version}} &middot; {{.Config}}{{with .ConfigSHA256}} (sha256 {{printf "%.12s" .}}){{end}}</div>
<div class="verdict {{.Verdict}}">{{.Verdict}}</div>
<div class="sub">{{count .Report "PASS"}} passed, {{count .Report "WARN"}} warnings, {{count .Report "FAIL"}} failed</div>

<h2>Checks</h2>
<table><tr><th></th><th>Check</th><th>Found</th><th>Why</th><th>What to do</th></tr>
{{range .Checks}}<tr><td class="v {{.Verdict}}">{{.Verdict}}</td><td>{{.Title}}</td><td>{{.Figure}}</td><td>{{.Reason}}</td><td>{{.Action}}</td></tr>
{{end}}</table>

<h2>Receiver</h2>
<table>
<tr><th>Device</th><td>{{.Receiver.Device}}</td><th>Model</th><td>{{or .Receiver.Module "unknown"}}</td></tr>
<tr><th>Firmware</th><td>{{or .Receiver.Firmware "unknown"}}</td><th>Hardware / software</th><td>{{or .Receiver.Hardware "unknown"}} / {{or .Receiver.Software "unknown"}}</td></tr>
<tr><th>Fix</th><td>{{.Receiver.FixSeconds}} of {{.Receiver.Seconds}} s ({{pct .Receiver.FixSeconds .Receiver.Seconds}}), {{.Receiver.MinSats}}-{{.Receiver.MaxSats}} satellites</td><th>Antenna</th><td>{{.Receiver.Antenna}}</td></tr>
<tr><th>Interference / spoofing</th><td>{{.Receiver.Jamming}} / {{.Receiver.Spoofing}}</td><th>Survey-in</th><td>{{with .Receiver.Survey}}{{if .Active}}in progress{{else if .Valid}}done{{else}}off{{end}}, {{printf "%.2f" .MeanAccM}} m, {{.Observations}} observations{{else}}not reported{{end}}</td></tr>
</table>

<h2>Pulse (PPS)</h2>
<table>
<tr><th>Source</th><td>{{.PPS.Source}} on {{.PPS.Clock}}</td><th>Pulses</th><td>{{.PPS.Counted}} of {{.PPS.Expected}} expected, {{.PPS.Missing}} missing, {{.PPS.Dropped}} edges dropped</td></tr>
<tr><th>Jitter</th><td>sigma {{ns .PPS.Residual.Sigma}}, 99% within {{ns .PPS.Residual.AbsP99}} ({{.PPS.Residual.N}} pulses)</td>
<th>Clock from the pulse</th><td>{{with .PPS.Offset}}mean {{ns .Mean}}, sigma {{ns .Sigma}}{{else}}not measured (standalone){{end}}</td></tr>
<tr><th>Width</th><td>{{with .PPS.Width}}{{ns .Mean}} ({{ns .Min}} to {{ns .Max}}){{else}}not measured{{end}}</td>
<th>Sawtooth</th><td>{{with .PPS.Sawtooth}}{{ns .Min}} to {{ns .Max}} (qErr){{else}}not reported{{end}}</td></tr>
</table>
{{range .Plots}}{{.}}
{{end}}
{{with .PHC}}<h2>PHC and system clock</h2>
<table><tr><th>Device</th><td>{{.Device}} ({{.Method}})</td><th>Readings</th><td>{{len .Samples}}, {{.Failures}} failed</td></tr>
<tr><th>Offset</th><td>mean {{ns .Offset.Mean}}, sigma {{ns .Offset.Sigma}}, trend {{printf "%+.1f" .SlopePPB}} ppb</td><th>Read window</th><td>median {{ns .WindowMedianNS}}, worst {{ns .Window.Max}}</td></tr></table>{{end}}
{{with .Clock}}<h2>Clock</h2>
<table><tr><th>Clock</th><td>{{.Name}}</td><th>State</th><td>{{.Final}} class {{.Class}} ({{join .States " > "}})</td></tr>
<tr><th>Reference</th><td>{{.Reference}}</td><th>Estimated error</th><td>{{if ge .EstErrorNS 0}}{{dur .EstErrorNS}}{{else}}unknown{{end}}</td></tr></table>{{end}}

<h2>Interfaces</h2>
<table><tr><th>Interface</th><th>Serves</th><th>Link</th><th>VLAN</th><th>Timestamping (can / applied / used)</th><th>PTP port</th></tr>
{{range .Interfaces}}<tr><td>{{.Name}}</td><td>{{join .Roles ", "}}</td><td>{{if .Exists}}{{.OperState}}{{if gt .SpeedMbps 0}}, {{.SpeedMbps}} Mb/s {{.Duplex}}{{end}}{{if .CarrierChanges}}, {{.CarrierChanges}} carrier changes{{end}}{{else}}missing{{end}}</td>
<td>{{if gt .VLAN 0}}{{.VLAN}} on {{.Parent}}{{else}}untagged{{end}}</td>
<td>{{if .HWCapable}}hardware {{.PHC}}{{else}}software{{end}} / {{or .Applied "-"}} / {{or .Timestamping "-"}}</td><td>{{.PortState}}{{if .V1State}}, v1 {{.V1State}}{{end}}</td></tr>
{{end}}</table>

<h2>Known delays and the error budget</h2>
<table><tr><th>Antenna cable</th><td>{{dur .Delays.CableNS}}</td><th>Pulse offset</th><td>{{dur .Delays.PPSOffsetNS}}</td></tr>
{{range .Delays.Ports}}<tr><th>{{.Interface}} ingress</th><td>{{dur .IngressNS}}</td><th>{{.Interface}} egress</th><td>{{dur .EgressNS}}</td></tr>
{{end}}</table>
{{range .Budgets}}<table><tr><th colspan="3">{{.Service}}: {{ns .TotalNS}} of {{ns .NeedNS}} ({{.Need}}) <span class="verdict {{.Verdict}}" style="font-size:12px;padding:1px 6px;margin:0 0 0 8px">{{.Verdict}}</span></th></tr>
{{range .Terms}}<tr><td>{{.Name}}</td><td>{{ns .NS}}</td><td class="small">{{.Basis}}</td></tr>
{{end}}</table>
{{end}}<p class="small">Terms are independent bounds, added as a root sum of squares.</p>

<h2>Followers and monitored clocks</h2>
<table><tr><th>Kind</th><th>Interface</th><th>Name</th><th>Result</th></tr>
{{range .Followers}}<tr><td>{{.Kind}}</td><td>{{.Interface}}</td><td>{{.Name}}</td><td>{{if not .Checked}}not checked{{else if .LostAtEnd}}silent{{else if .LostPolls}}silent in {{.LostPolls}} of {{.Polls}} looks{{else}}answered{{end}}</td></tr>
{{else}}<tr><td colspan="4">no followers listed in expect</td></tr>
{{end}}{{range .Monitors}}<tr><td>monitor</td><td>{{.Host}}</td><td>{{.Name}}</td><td>{{.Answers}} of {{.Polls}} answered, offset {{dur .OffsetNS}}</td></tr>
{{end}}</table>

<h2>Leap seconds</h2>
<p>{{.Leap.Source}}: valid until {{day .Leap.Expires}}.</p>
{{if .Problems}}<h2>Problems while collecting</h2><ul>{{range .Problems}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p class="small">Generated by sitegm commission. The JSON document beside this page holds every figure and sample.</p>
</main></body></html>
`))
