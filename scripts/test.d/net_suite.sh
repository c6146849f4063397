# The network-lab suite of scripts/test, sourced by it: a boot on the lab's tap with
# DHCP, the host's pings and echo peers, the flood and link flap, the hostile peers, and
# the checks of what the kernel reported against QEMU's interrupt traces. Uses the
# counters and helpers scripts/test defines (pass, fail, kernel_counts, trace_matches, ...).
# shellcheck shell=bash

# For the network lab (only virtio-net uses LPIs there, and nothing raises them with INT):
# every LPI's total deliveries equal QEMU's translated MSI writes carrying its EventID (up
# to one more per device reset, and per user-mode driver line that ended: user_ends).
its_total_matches() {
    local name=$1 logf=$2 line intid count raised checked=0 resets
    resets=$(resets_logged "$logf")
    while read -r line; do
        intid=$(sed -E 's/.* intid=([0-9]+) .*/\1/' <<<"$line")
        count=$(sed -E 's/.* count=([0-9]+).*/\1/' <<<"$line")
        raised=$(grep -c "^gicv3_its_translation_write .* data $(printf '0x%x' $((intid - 8192))) size 4 " "$logf.trace")
        if ! counts_agree "$count" "$raised" $((resets + $(user_ends "$logf" "$intid"))); then
            fail "kernel[$name]: LPI $intid: kernel counted $count, QEMU translated $raised MSI writes"
            return
        fi
        checked=$((checked + 1))
    done < <(grep -E '^report: irq-total intid=(8[1-9][0-9]{2}|9[0-9]{3}) ' "$logf")
    [ "$checked" -gt 0 ] && pass "kernel[$name]: $checked LPI counts match QEMU's ITS translation trace"
}

# monitor_cmd SOCKET CMD : one command to a QEMU human monitor on a unix socket.
monitor_cmd() {
    python3 - "$1" "$2" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
time.sleep(0.2)
s.close()
PY
}

# The network lab (scripts/netlab): a private namespace with dnsmasq and HTTP servers; its
# self-check proves the servers work (once), then the kernel boots on its tap with
# `net=dhcp`. Once the kernel logs its DHCP lease, the host pings it (it must answer by
# interrupt). The kernel reports how the NIC came up; each configuration names the
# interrupt mode and interface it must have fallen back to. With HOSTILE=hostile the boot
# also gets scripts/netlab.d/hostile.py's frames (malformed options, martians, fragments,
# ARP probes; docs/net.md "Hostile peers"), whose own checks count here.
#   net_suite NAME GIC NIC_OPTS EXPECT DESCRIPTION [MACHINE_OPTS] [HOSTILE]
# MACHINE_OPTS go to QEMU's -M (QEMU_MACHINE_OPTS in lib.sh), e.g. its=off.
# lab_kernel_verdict NAME LOG RC DESC : the kernel tests' counts of a lab boot, added up.
lab_kernel_verdict() {
    local name=$1 logf=$2 rc=$3 desc=$4 p f sk
    read -r p f sk < <(kernel_counts "$logf")
    PASSED=$((PASSED + p)); FAILED=$((FAILED + f)); SKIPPED=$((SKIPPED + sk))
    if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
        [ "$f" -eq 0 ] && fail "kernel[$name]: exit $rc (log: $logf)"
        FAILURES+=("kernel[$name]"); grep -E 'FAILED|panic|unexpected exception' "$logf" | head
    fi
    printf '  %-7s kernel[%s] (%s): %d passed, %d failed, %d skipped\n' \
        "$([ "$f" -eq 0 ] && [ "$rc" -eq 0 ] && echo ok || echo FAILED)" "$name" "$desc" "$p" "$f" "$sk"
}

# peer_verdict NAME WHAT : the host's side of a suite's echo servers (scripts/netlab.d/peer.py,
# its log $LOGDIR/NAME-peer.log): two exchanges (UDP and TCP echo); anything less is a crash
# or a hang of peer.py.
peer_verdict() {
    local name=$1 what=$2 line results=0
    while read -r line; do
        case "$line" in
            ok*) pass "kernel[$name]: host <-> $what: ${line#ok }"; results=$((results + 1)) ;;
            FAILED*|peer.py:*) fail "kernel[$name]: host <-> $what: $line"; results=$((results + 1)) ;;
        esac
    done < <(cat "$LOGDIR/$name-peer.log" 2>/dev/null)
    [ "$results" -ge 2 ] || fail "kernel[$name]: host <-> $what: $results of 2 results (log: $LOGDIR/$name-peer.log)"
}

net_suite() {
    local name=$1 gic=$2 nic=$3 expect=$4 desc=$5 hostile=${7:-}
    local QEMU_MACHINE_OPTS=${6:-}
    local logf="$LOGDIR/kernel-$name.log" rc=0 selfcheck=0 filter=netlab
    [ "$name" = netlab ] && selfcheck=1
    # The ITS lab boot is the GICv3 2-CPU configuration of the process tests as well.
    [ "$name" = netlab-its ] && filter='netlab|process'
    # A stale log would show the previous run's lease (the same address) at once: the
    # pings would go out before the guest has an address.
    rm -f "$logf" "$logf.trace"
    printf '%s\n' gic_set_irq gicv3_its_translation_write >"$logf.events"
    (
        source scripts/netlab.d/netlab.sh
        trap netlab_down EXIT
        export NETLAB_NIC_OPTS=$nic
        command -v ping >/dev/null || apt_install iputils-ping >/dev/null 2>&1
        # hostile.py uses Debian's python3 and its scapy (pyenv or venv pythons lack it).
        [ -n "$hostile" ] && { /usr/bin/python3 -c 'import scapy' 2>/dev/null ||
            apt_install python3 python3-scapy >/dev/null 2>&1; }
        netlab_up >"$LOGDIR/$name-up.log" 2>&1 || exit 90
        if [ $selfcheck = 1 ]; then
            netlab_selfcheck >"$LOGDIR/netlab-selfcheck.log" 2>&1 || exit 91
        fi
        local mon="$NETLAB_STATE/monitor.sock"
        ( set -o pipefail
          netlab_exec timeout 300 qemu-system-aarch64 $(netlab_qemu_args "$gic" 1G 2 none) \
              -trace "events=$logf.events,file=$logf.trace" -semihosting \
              -monitor "unix:$mon,server=on,wait=off" \
              -append "test=$filter net=dhcp edu=none $hostile $(lab_digests) -- run=/bin/utest,net" </dev/null 2>&1 \
              | sed -u 's/\r$//' >"$logf" ) &
        local qemu=$! waited=0 lease=""
        while [ -z "$lease" ] && [ $waited -lt 600 ] && kill -0 $qemu 2>/dev/null; do
            lease=$(grep -oE 'net: DHCP lease 192\.0\.2\.[0-9]+/' "$logf" 2>/dev/null | awk '{print $4}' | tr -d / | head -1)
            sleep 0.1; waited=$((waited + 1))
        done
        # Three pings as soon as the lease is logged, every one counted: the host knows our
        # MAC from DHCP while we do not know its yet, so the first request is held while
        # the guest asks for the sender's MAC, then answered (docs/net.md "Neighbours").
        if [ -n "$lease" ]; then
            netlab_exec ping -c 3 -i 0.2 -W 2 "$lease" >"$LOGDIR/$name-ping.log" 2>&1
            # The user suite's UDP and TCP echo servers: the host talks to them when asked.
            netlab_exec timeout 400 python3 scripts/netlab.d/peer.py "$logf" "$lease" 380 \
                >"$LOGDIR/$name-peer.log" 2>&1 &
        fi
        # The kernel tests that need the host's help log a line when they are ready, in
        # whatever order they run; each is served once:
        # - the flood test: 200 000 datagrams and the malformed frames, a link flap through
        #   QEMU's monitor (configuration interrupts), then pings that must be answered;
        # - the hostile peers (with HOSTILE): scripts/netlab.d/hostile.py.
        rm -f "$LOGDIR/$name-hostile.log"
        local flooded=0 hostiled=1
        [ -n "$hostile" ] && hostiled=0
        waited=0
        while [ -n "$lease" ] && [ $((flooded + hostiled)) -lt 2 ] && [ $waited -lt 1800 ] \
            && kill -0 $qemu 2>/dev/null; do
            if [ $flooded = 0 ] && grep -q 'netlab: flood me' "$logf"; then
                netlab_exec timeout 120 python3 scripts/netlab.d/flood.py tap0 "$NETLAB_GUEST_MAC" \
                    "$lease" 200000 60 5 >"$LOGDIR/$name-flood.log" 2>&1
                monitor_cmd "$mon" "set_link n0 off"; sleep 0.5
                monitor_cmd "$mon" "set_link n0 on"; sleep 0.5
                netlab_exec ping -c 3 -i 0.2 -W 2 "$lease" >>"$LOGDIR/$name-flood.log" 2>&1
                flooded=1
            fi
            if [ $hostiled = 0 ] && grep -q 'netlab: hostile peers' "$logf"; then
                netlab_exec timeout 120 /usr/bin/python3 scripts/netlab.d/hostile.py tap0 \
                    "$NETLAB_GUEST_MAC" "$lease" >"$LOGDIR/$name-hostile.log" 2>&1
                hostiled=1
            fi
            sleep 0.1; waited=$((waited + 1))
        done
        wait $qemu
    )
    rc=$?
    case $rc in
        90) fail "$name: the lab did not come up (log: $LOGDIR/$name-up.log)"; return ;;
        91) fail "netlab: self-check failed (log: $LOGDIR/netlab-selfcheck.log)"; return ;;
    esac
    if [ $selfcheck = 1 ]; then
        read -r sp sf < <(grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOGDIR/netlab-selfcheck.log" | tail -1 | sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/\1 \2/')
        PASSED=$((PASSED + ${sp:-0})); FAILED=$((FAILED + ${sf:-0}))
        printf '  %-7s netlab self-check: %d passed, %d failed\n' ok "${sp:-0}" "${sf:-0}"
    fi
    lab_kernel_verdict "$name" "$logf" "$rc" "$desc"
    peer_verdict "$name" "user suite"
    if grep -q "^report: virtio-net $expect " "$logf"; then
        pass "kernel[$name]: virtio-net came up with $expect"
    else
        fail "kernel[$name]: virtio-net did not report '$expect' (log: $logf)"
    fi
    # The tap offers every offload the driver asks for; a NIC started without some
    # (csum=off,guest_tso4=off,mrg_rxbuf=off) must bring the driver up without those (and
    # without large receive, which needs GUEST_CSUM and MRG_RXBUF here).
    local offloads rxcsum=on tso=on mrg=on txcsum=on
    [[ "$nic" == *,guest_csum=off* ]] && rxcsum=off tso=off
    [[ "$nic" == *,guest_tso4=off* ]] && tso=off
    [[ "$nic" == *,mrg_rxbuf=off* ]] && mrg=off tso=off
    [[ "$nic" == *,csum=off* ]] && txcsum=off
    offloads="rx-csum $rxcsum tso4 $tso mergeable $mrg tx-csum $txcsum"
    if grep -q "^report: virtio-net .* offloads: $offloads\$" "$logf"; then
        pass "kernel[$name]: offloads $offloads"
    else
        fail "kernel[$name]: offloads are not '$offloads' (log: $logf)"
    fi
    # The host's pings must all be answered (the first three from the moment the lease is
    # logged, and three right after the flood).
    if grep -q '3 packets transmitted, 3 received' "$LOGDIR/$name-ping.log" 2>/dev/null; then
        pass "kernel[$name]: the host's pings are answered"
    else
        fail "kernel[$name]: the host's pings were not all answered (log: $LOGDIR/$name-ping.log)"
    fi
    if grep -q '3 packets transmitted, 3 received' "$LOGDIR/$name-flood.log" 2>/dev/null; then
        pass "kernel[$name]: pings right after the flood and a link flap are answered"
    else
        fail "kernel[$name]: pings after the flood were not all answered (log: $LOGDIR/$name-flood.log)"
    fi
    if [ -n "$hostile" ]; then
        local hp hf
        read -r hp hf < <(sed -nE 's/^hostile: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' \
            "$LOGDIR/$name-hostile.log" 2>/dev/null)
        if [ -z "$hp" ]; then
            fail "kernel[$name]: hostile.py did not finish (log: $LOGDIR/$name-hostile.log)"
        else
            PASSED=$((PASSED + hp)); FAILED=$((FAILED + hf))
            printf '  %-7s kernel[%s]: hostile peers, seen from the wire: %d passed, %d failed\n' \
                "$([ "$hf" -eq 0 ] && echo ok || echo FAILED)" "$name" "$hp" "$hf"
            [ "$hf" -ne 0 ] && { FAILURES+=("kernel[$name]: hostile peers"); grep FAILED "$LOGDIR/$name-hostile.log"; }
        fi
    fi
    add_user_counts "kernel[$name]" "$logf"
    trace_matches "$name" "$logf"
    [ "$gic" = 3 ] && its_total_matches "$name" "$logf"
}
