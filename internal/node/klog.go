package node

import (
	"flag"
	"io"
	"sync"

	"k8s.io/klog/v2"
)

var quietKlog sync.Once

// silenceKlog stops Tessera's klog lines from reaching stderr: the node
// logs through slog, and a terminal running 'liaison up' or the demo
// should show only that.
func silenceKlog() {
	quietKlog.Do(func() {
		fs := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(fs)
		fs.Set("logtostderr", "false")
		fs.Set("stderrthreshold", "FATAL")
		klog.SetOutput(io.Discard)
	})
}
