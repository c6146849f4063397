# The user-NIC suite of scripts/test, sourced by it: a lab boot with a second virtio-net
# NIC on tap1 driven by the user-mode driver /bin/vnet (init's driver= option), whose
# kernel NetIf interface gets its own address by DHCP. The host pings that address and
# echoes over UDP and TCP through it (peer.py), the user suite `unet` downloads 16 MiB
# through it and restarts the driver in the middle of a download and an echo session.
# Uses the counters and helpers scripts/test defines (pass, fail, kernel_counts, ...).
# shellcheck shell=bash

# unet_suite NAME GIC DESC
unet_suite() {
    local name=$1 gic=$2 desc=$3
    local logf="$LOGDIR/kernel-$name.log" rc=0
    rm -f "$logf" "$logf.trace" "$LOGDIR/$name-ping.log" "$LOGDIR/$name-peer.log"
    printf '%s\n' gic_set_irq gicv3_its_translation_write >"$logf.events"
    (
        source scripts/netlab.d/netlab.sh
        trap netlab_down EXIT
        command -v ping >/dev/null || apt_install iputils-ping >/dev/null 2>&1
        netlab_up >"$LOGDIR/$name-up.log" 2>&1 || exit 90
        ( set -o pipefail
          netlab_exec timeout 400 qemu-system-aarch64 $(netlab_qemu_args "$gic" 1G 2 none) \
              $(netlab_unet_args) -trace "events=$logf.events,file=$logf.trace" -semihosting \
              -append "test=netif net=dhcp edu=none $(lab_digests) -- driver=/bin/vnet@00:0b.0 run=/bin/utest,unet" \
              </dev/null 2>&1 | sed -u 's/\r$//' >"$logf" ) &
        local qemu=$! waited=0 addr=""
        netlab_exec timeout 380 python3 scripts/netlab.d/peer.py "$logf" - 360 unet \
            >"$LOGDIR/$name-peer.log" 2>&1 &
        while [ -z "$addr" ] && [ $waited -lt 1200 ] && kill -0 $qemu 2>/dev/null; do
            addr=$(grep -oE 'unet: address 198\.51\.100\.[0-9]+' "$logf" 2>/dev/null | awk '{print $3}' | head -1)
            sleep 0.1; waited=$((waited + 1))
        done
        [ -n "$addr" ] && netlab_exec ping -c 3 -i 0.2 -W 2 "$addr" >"$LOGDIR/$name-ping.log" 2>&1
        wait $qemu
    )
    rc=$?
    [ $rc = 90 ] && { fail "$name: the lab did not come up (log: $LOGDIR/$name-up.log)"; return; }
    lab_kernel_verdict "$name" "$logf" "$rc" "$desc"
    if grep -q '3 packets transmitted, 3 received' "$LOGDIR/$name-ping.log" 2>/dev/null; then
        pass "kernel[$name]: the host's pings to the user NIC's address are answered"
    else
        fail "kernel[$name]: pings to the user NIC were not all answered (log: $LOGDIR/$name-ping.log)"
    fi
    peer_verdict "$name" "user NIC"
    # Every unet test must run: a skip here means the driver or the lab was missing.
    if grep -qE '^user unet: [0-9]+ passed, 0 failed, 0 skipped' "$logf"; then
        pass "kernel[$name]: the unet suite ran every test"
    else
        fail "kernel[$name]: the unet suite did not pass every test without skips (log: $logf)"
    fi
    add_user_counts "kernel[$name]" "$logf"
    trace_matches "$name" "$logf"
    [ "$gic" = 3 ] && its_total_matches "$name" "$logf"
    grep -E '^report: unet-' "$logf" | sed 's/^/          /'
}
