package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// The commissioning report the delays scenario ran in the guest comes out
// as a file (LAB-FILE); here, on the host, headless Chromium renders it:
// the page must show its verdict, its checks and its plots with nothing
// fetched, and its screenshot is kept beside it (commission-report.png).

// reportName is the report's file in the work directory.
const reportName = "commission.html"

// renderReport judges the rendering into the delays scenario's result.
func (o *Options) renderReport(ctx context.Context, results []Result) {
	i := -1
	for k, r := range results {
		if r.Name == "delays" {
			i = k
		}
	}
	if i < 0 {
		return
	}
	r := &results[i]
	if r.Figures == nil {
		r.Figures = map[string]any{}
	}
	page := filepath.Join(o.Work, reportName)
	if _, err := os.Stat(page); err != nil {
		r.Pass = false
		r.Notes = append(r.Notes, "the guest handed out no commissioning report")
		return
	}
	chromium, err := lookPath("chromium")
	if err != nil {
		r.Notes = append(r.Notes, "the report was not rendered: no chromium here")
		return
	}
	profile, err := os.MkdirTemp("", "lab-chromium-")
	if err != nil {
		r.Notes = append(r.Notes, err.Error())
		return
	}
	defer os.RemoveAll(profile)
	browse := func(args ...string) (string, error) {
		cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(cctx, chromium, append([]string{"--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
			"--user-data-dir=" + profile, "--no-first-run", "--window-size=1050,2600"}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+profile)
		out, err := cmd.Output()
		return string(out), err
	}
	url := "file://" + page
	dom, err := browse("--dump-dom", url)
	if err != nil {
		r.Pass = false
		r.Notes = append(r.Notes, fmt.Sprintf("chromium: %v", err))
		return
	}
	verdict := regexp.MustCompile(`class="verdict (PASS|WARN|FAIL)">`).FindStringSubmatch(dom)
	plots, rows := strings.Count(dom, "<polyline"), strings.Count(dom, `<td class="v `)
	ok := verdict != nil && plots >= 2 && rows >= 10
	r.Figures["report_rendered"] = ok
	r.Figures["report_plots"] = plots
	shot := filepath.Join(o.Work, "commission-report.png")
	if _, err := browse("--screenshot="+shot, url); err != nil {
		ok = false
		r.Notes = append(r.Notes, fmt.Sprintf("chromium screenshot: %v", err))
	}
	if !ok {
		r.Pass = false
		r.Notes = append(r.Notes, fmt.Sprintf("the rendered report: verdict %v, %d plots, %d checks", verdict, plots, rows))
	}
	o.logf("lab: the commissioning report rendered in Chromium: %s", shot)
}
