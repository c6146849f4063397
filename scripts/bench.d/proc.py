#!/usr/bin/env python3
"""Process figures: boots Capstan with init=/bin/bench and collects its lines.

    proc.py OUT.json QEMU_COMMAND...

The guest program times a null system call, spawn+wait of /bin/true, a notification
round trip between two processes, and a 1 MiB mem_map, each as median and p99 over
many samples (see userland/programs/src/bin/bench.rs).
"""
import sys

from guest import run

run("proc", "init=/bin/bench", sys.argv[1], sys.argv[2:], 4,
    {"qemu": "virt, GICv2, cortex-a72, 1G, -smp 2"})
