"""What this machine gives the process: the web server's daphne count, a training's torch threads and
the benchmarks' machine line all start from it. No Django, no torch: the server's launcher imports it."""
import os


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, which a container or taskset may narrow), else
    every core."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
