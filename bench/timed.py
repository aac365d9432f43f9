# Runs one command and reports, on the last line of stderr, its wall time from a monotonic
# nanosecond clock (sub-millisecond, unlike GNU time's 10 ms %e), its CPU time and the peak
# resident memory of the largest process of its tree (the kernel's ru_maxrss, in KiB, for the
# child and every descendant it waited for). The timer starts just before the spawn and stops
# when the child is reaped, so this script's own start-up is not counted. Its memory is: Linux
# keeps the high-water mark of the address space a child leaves at exec, which is this
# interpreter's (about 13 MiB), so a small tool's peak reads as that floor.
import json
import os
import sys
import time

argv = sys.argv[1:]
started = time.perf_counter_ns()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
wall_ns = time.perf_counter_ns() - started
sys.stderr.write('@@timed ' + json.dumps({
    'wallNs': wall_ns,
    'userS': usage.ru_utime,
    'systemS': usage.ru_stime,
    'peakKiB': usage.ru_maxrss,
    'exitCode': os.waitstatus_to_exitcode(status),
}) + '\n')
