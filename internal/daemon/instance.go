package daemon

import (
	"fmt"
	"path/filepath"
	"strings"

	"sitegm/internal/config"
)

// claimNames are what one running sitegm holds alone (hw/claim): its
// status socket, its receiver's serial device, and every port it serves
// on each interface. A second sitegm for the same configuration, or one
// that would serve a port of the first, fails to claim them and stops
// before it opens anything.
func claimNames(status config.Status, gnss config.GNSS, ptps []config.PTP, ntps []config.NTP) []string {
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	var names []string
	if status.Socket != "" {
		names = append(names, "status"+abs(status.Socket))
	}
	if gnss.Device != "" && !strings.Contains(gnss.Device, "://") {
		names = append(names, "gnss"+abs(gnss.Device))
	}
	for _, p := range ptps {
		if p.Transport == "l2" {
			names = append(names, "l2/"+p.Interface)
			continue
		}
		names = append(names, fmt.Sprintf("udp/%s/%d", p.Interface, p.EventPort), fmt.Sprintf("udp/%s/%d", p.Interface, p.GeneralPort))
	}
	for _, n := range ntps {
		names = append(names, fmt.Sprintf("udp/%s/%d", n.Interface, n.Port))
	}
	return names
}
