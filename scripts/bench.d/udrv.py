#!/usr/bin/env python3
"""User-mode driver figures: boots Capstan with init starting /bin/edu as a driver and
/bin/bench udrv as its run= program, and collects the restart figures.

    udrv.py OUT.json QEMU_COMMAND...

`bench udrv` kills the driver 20 times; each sample is the time from the kill until init
has a fresh /bin/edu running (restart_process) and until that driver holds an armed
interrupt line again (restart_ready): what a device is without a driver when one dies.
Issue 17's goal for a driver restart is under 200 ms.
"""
import sys

from guest import run

run("udrv", "edu=msi -- driver=/bin/edu@00:02.0,--dma-bits,40,--loop run=/bin/bench,udrv",
    sys.argv[1], sys.argv[2:], 2,
    {"qemu": "virt, GICv2 (v2m MSI), cortex-a72, 1G, -smp 2, edu",
     "goal": "restart under 200 ms (issue 17)"}, unit=("ms", 1e6))
