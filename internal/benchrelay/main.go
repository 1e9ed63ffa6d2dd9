// Command benchrelay is the measuring half of scripts/bench-relay.sh and
// scripts/load.sh, which start the processes; this program only observes them:
//
//	benchrelay watch -label NAME <fmp4 >events.jsonl
//	    reads the fMP4 stream `moq export fmp4` writes and logs, per fragment,
//	    when its last byte arrived, its track, decode time and size;
//	benchrelay snap role=PID... >>snapshots.jsonl
//	    records the CPU time and RSS of each process (/proc/PID/stat, status),
//	    the machine's busy CPU time (/proc/stat) and the load average;
//	benchrelay report [-json] -dir DIR
//	    turns a run's snapshots, archiver logs, manifests and events into
//	    tables, or (-json) into one summary object, a row of a load sweep;
//	benchrelay derive -store DIR -manifests DIR -from NAME -name FMT -first I -n N
//	    copies an archived broadcast N times under new names, each CMAF group
//	    made unique to its copy (scripts/load.sh: distinct payloads).
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchrelay watch|snap|report|derive [args]")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "watch":
		err = watchMain(args)
	case "snap":
		err = snapMain(args)
	case "report":
		err = reportMain(args)
	case "derive":
		err = deriveMain(args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrelay:", err)
		os.Exit(1)
	}
}
