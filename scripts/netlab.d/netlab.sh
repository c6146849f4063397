# Capstan network lab: the function interface. Source it (scripts/lib.sh is sourced
# too if it is not already), then:
#
#   netlab_up                 namespace capstan-lab-$BASHPID with tap0, dnsmasq, nginx, httpd.py,
#                             dnsd.py
#   netlab_qemu_args GIC MEM SMP [EDU]
#                             lib.sh's qemu_args with the virtio-net NIC on slot 3
#                             attached to tap0 (everything else identical)
#   netlab_unet_args          QEMU args for a second virtio-net NIC (slot 11, 00:0b.0) on tap1
#   netlab_exec CMD...        runs CMD inside the namespace (QEMU must run this way)
#   netlab_selfcheck          checks the lab's servers from inside the namespace
#   netlab_down               ends everything netlab_up started, deletes the namespace
#   netlab_sweep [1]          deletes namespaces left by killed runs (netlab_up does it);
#                             with 1 also kept ones whose run has ended
#
# After netlab_up: NETLAB_NS (namespace), NETLAB_STATE (its logs, pids, configs, under
# build/netlab/), NETLAB_WWW (served files), NETLAB_SUMS (build/netlab/files.sha256).
# Every wait is bounded; failures return non-zero with the reason on stderr.
# The caller owns the traps: call netlab_down from an EXIT/INT/TERM trap.

if [ -z "${ROOT:-}" ] || ! declare -F apt_install >/dev/null; then
    source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"
fi

NETLAB_DIR="$ROOT/scripts/netlab.d"
NETLAB_BASE="$BUILD_DIR/netlab"
NETLAB_WWW="$NETLAB_BASE/www"
NETLAB_SUMS="$NETLAB_BASE/files.sha256"
NETLAB_GW=192.0.2.1          # gateway: DNS, DHCP, HTTP
NETLAB_SILENT=192.0.2.2      # an address where nothing answers DNS (UDP/TCP 53 dropped)
NETLAB_ODD_DNS=192.0.2.4     # dnsd.py: SERVFAIL, TC, dropped queries, hostile replies
NETLAB_PEER=192.0.2.5        # answers ARP and ping only: a neighbour no other test has met
NETLAB_NEW_PEERS="192.0.2.6 192.0.2.7 192.0.2.8"  # ARP and ping only: first contact, three at once
NETLAB_GUEST_MAC=52:54:00:12:34:56
# The second link (tap1, TEST-NET-2): for a NIC a user-mode driver feeds (`vnet`); DHCP
# .50-.99, DNS and HTTP (nginx) on its gateway too.
NETLAB_GW2=198.51.100.1
NETLAB_GUEST2_MAC=52:54:00:12:34:57
NETLAB_UNET_SLOT=11          # PCI slot of that NIC (00:0b.0)
NETLAB_NS=${NETLAB_NS:-}
NETLAB_STATE=${NETLAB_STATE:-}
NETLAB_KEEP=${NETLAB_KEEP:-0}
NETLAB_PIDS=()

netlab_log() { printf '==> netlab: %s\n' "$*" >&2; }

netlab_exec() { ip netns exec "$NETLAB_NS" "$@"; }

# netlab_wait_for SECS WHAT CMD... : polls CMD every 0.1 s for at most SECS.
netlab_wait_for() {
    local limit=$(($1 * 10)) what=$2 i=0
    shift 2
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -ge $limit ]; then netlab_log "timed out after ${limit}00 ms waiting for $what"; return 1; fi
        sleep 0.1
    done
}

# (No `producer | grep -q` anywhere: under pipefail the producer's SIGPIPE fails the test.)
netlab_ns_exists() { [[ " $(ip netns list 2>/dev/null | awk '{print $1}' | tr '\n' ' ') " == *" $1 "* ]]; }

# netlab_kill_ns NS : ends every process inside NS (the namespace is private to one
# netlab run, so all of them were started by it), then deletes NS. TERM, 5 s, KILL.
netlab_kill_ns() {
    local ns=$1 pids i
    netlab_ns_exists "$ns" || return 0
    pids=$(ip netns pids "$ns" 2>/dev/null)
    if [ -n "$pids" ]; then
        kill -TERM $pids 2>/dev/null
        for i in $(seq 50); do
            pids=$(ip netns pids "$ns" 2>/dev/null)
            [ -z "$pids" ] && break
            sleep 0.1
        done
        if [ -n "$pids" ]; then kill -KILL $pids 2>/dev/null; sleep 0.2; fi
    fi
    ip netns delete "$ns" 2>/dev/null || true
    ! netlab_ns_exists "$ns"
}

# netlab_proc_id PID : "PID:start time" of a live (not zombie) process, or nothing.
netlab_proc_id() {
    local pid=$1 stat
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }                       # the fields after "(comm) "
    set -- $stat                            # $1 = state, $20 = start time
    case "$1" in Z|X) return 1 ;; esac
    echo "$pid:${20}"
}

# netlab_owner_alive NS : the run that created NS (pid and start time recorded in
# build/netlab/NS/owner) is still running. A reused pid does not count.
netlab_owner_alive() {
    local ns=$1 pid=${1#capstan-lab-} want have
    want=$(cat "$NETLAB_BASE/$ns/owner" 2>/dev/null)
    have=$(netlab_proc_id "$pid") || return 1
    [ -z "$want" ] || [ "$want" = "$have" ]
}

# Namespaces capstan-lab-PID whose run is gone were left by a killed run (SIGKILL skips
# traps). They are removed unless kept with --keep (build/netlab/NS/keep), or ALL=1.
netlab_sweep() {
    local all=${1:-0} ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^capstan-lab-[0-9]+$'); do
        [ "$ns" = "$NETLAB_NS" ] && continue
        netlab_owner_alive "$ns" && continue
        if [ "$all" = 1 ] || [ ! -e "$NETLAB_BASE/$ns/keep" ]; then
            netlab_log "removing leftover namespace $ns"
            netlab_kill_ns "$ns"
        fi
    done
}

# Keeps the state (logs) of the 10 newest runs whose namespace is gone.
netlab_prune_logs() {
    local dir
    ls -1dt "$NETLAB_BASE"/capstan-lab-* 2>/dev/null | while read -r dir; do
        netlab_ns_exists "${dir##*/}" || echo "$dir"
    done | tail -n +11 | while read -r dir; do rm -rf "$dir"; done
}

netlab_install() {
    apt_install dnsmasq-base nginx-light iproute2 || return 1
    command -v python3 >/dev/null 2>&1 || apt_install python3 || return 1
    # nft drops DNS to the silent address; without it a socket that never reads does.
    command -v nft >/dev/null 2>&1 || apt_install nftables >/dev/null 2>&1 ||
        netlab_log "nftables unavailable: the silent server will be a socket that never reads"
}

# netlab_bg NAME CMD... : starts CMD in the namespace in the background, output to
# STATE/NAME.out, and records its pid (in NETLAB_PIDS and STATE/NAME.pid).
netlab_bg() {
    local name=$1
    shift
    ip netns exec "$NETLAB_NS" "$@" >"$NETLAB_STATE/$name.out" 2>&1 </dev/null &
    NETLAB_PIDS+=($!)
    echo $! >"$NETLAB_STATE/$name.pid"
}

# netlab_listening udp|tcp ADDR PORT
netlab_listening() {
    [[ " $(ip netns exec "$NETLAB_NS" ss -Hln"${1:0:1}" | awk '{print $4}' | tr '\n' ' ') " == *" $2:$3 "* ]]
}

netlab_fail_logs() {
    local f
    for f in "$NETLAB_STATE"/*.out "$NETLAB_STATE"/dnsmasq.log "$NETLAB_STATE"/nginx-error.log; do
        [ -s "$f" ] && { echo "--- ${f#"$ROOT"/}" >&2; tail -15 "$f" >&2; }
    done
    return 1
}

netlab_up() {
    local cmd a
    netlab_install || return 1
    for cmd in ip ss dnsmasq nginx python3; do
        command -v $cmd >/dev/null 2>&1 || { netlab_log "$cmd not found"; return 1; }
    done
    [ -c /dev/net/tun ] || { netlab_log "/dev/net/tun is missing"; return 1; }
    NETLAB_NS="capstan-lab-$BASHPID"   # $BASHPID: unique even for two subshells of one script
    NETLAB_STATE="$NETLAB_BASE/$NETLAB_NS"
    netlab_sweep
    netlab_kill_ns "$NETLAB_NS" || { netlab_log "cannot remove stale $NETLAB_NS"; return 1; }
    rm -rf "$NETLAB_STATE"
    mkdir -p "$NETLAB_STATE/nginx-tmp" "$NETLAB_WWW" || return 1
    chmod 755 "$NETLAB_BASE" "$NETLAB_WWW"
    netlab_proc_id "$BASHPID" >"$NETLAB_STATE/owner"
    [ "$NETLAB_KEEP" = 1 ] && touch "$NETLAB_STATE/keep"
    netlab_prune_logs

    timeout 120 python3 "$NETLAB_DIR/genfiles.py" "$NETLAB_WWW" "$NETLAB_SUMS" ||
        { netlab_log "generating the served files failed"; return 1; }

    netlab_log "namespace $NETLAB_NS (logs: ${NETLAB_STATE#"$ROOT"/})"
    ip netns add "$NETLAB_NS" || return 1
    netlab_exec ip link set lo up &&
        netlab_exec ip tuntap add dev tap0 mode tap user "$(id -u)" &&
        netlab_exec ip addr add "$NETLAB_GW/24" dev tap0 &&
        netlab_exec ip addr add "$NETLAB_SILENT/24" dev tap0 &&
        netlab_exec ip addr add "$NETLAB_ODD_DNS/24" dev tap0 &&
        netlab_exec ip addr add "$NETLAB_PEER/24" dev tap0 &&
        netlab_exec ip -6 addr add 2001:db8::1/64 dev tap0 nodad 2>/dev/null;
    netlab_exec ip link set tap0 up || return 1
    for a in $NETLAB_NEW_PEERS; do netlab_exec ip addr add "$a/24" dev tap0 || return 1; done
    netlab_exec ip tuntap add dev tap1 mode tap user "$(id -u)" &&
        netlab_exec ip addr add "$NETLAB_GW2/24" dev tap1 &&
        netlab_exec ip link set tap1 up || { netlab_log "tap1 setup failed"; return 1; }
    [[ "$(netlab_exec ip -4 addr show dev tap0)" == *"inet $NETLAB_GW/24 "* ]] || { netlab_log "tap0 setup failed"; return 1; }
    # No routes leave the namespace: it has no other interface; forwarding is off anyway.
    netlab_exec sysctl -qw net.ipv4.ip_forward=0 >/dev/null 2>&1

    # DNS to the silent address is dropped: no answer and no ICMP port unreachable.
    if [ "${NETLAB_NO_NFT:-0}" != 1 ] && command -v nft >/dev/null 2>&1 && printf '%s\n' \
        'table inet capstan_lab {' \
        '  chain input {' \
        '    type filter hook input priority 0; policy accept;' \
        "    ip daddr $NETLAB_SILENT udp dport 53 counter drop" \
        "    ip daddr $NETLAB_SILENT tcp dport 53 counter drop" \
        '  }' '}' | netlab_exec nft -f -; then
        echo nft >"$NETLAB_STATE/silent-mode"
    else
        # Fallback: a bound UDP socket that never reads: datagrams queue and are dropped
        # without an ICMP error. (TCP 53 there is refused in this mode.)
        netlab_bg silent python3 -c "import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('$NETLAB_SILENT', 53)); time.sleep(86400)"
        echo socket >"$NETLAB_STATE/silent-mode"
    fi

    # dnsmasq: DNS only on 192.0.2.1:53 (not .2), DHCP on tap0; every name is local
    # (--local=/capstan.test/ and no upstream servers at all), nothing is forwarded.
    local txt250
    txt250=$(head -c 250 /dev/zero | tr '\0' x)
    netlab_bg dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null \
        --user=root --group=root \
        --pid-file="$NETLAB_STATE/dnsmasq.pid" \
        --log-facility="$NETLAB_STATE/dnsmasq.log" --log-queries=extra --log-dhcp \
        --bind-interfaces --listen-address="$NETLAB_GW" --listen-address="$NETLAB_GW2" --port=53 \
        --no-resolv --no-hosts --no-poll --local=/capstan.test/ --domain=capstan.test \
        --host-record=lab.capstan.test,"$NETLAB_GW",2001:db8::1 \
        --host-record=dual.capstan.test,192.0.2.10,2001:db8::10 \
        --host-record=dual.capstan.test,2001:db8::11 \
        --host-record=v4only.capstan.test,192.0.2.11 \
        --host-record=v6only.capstan.test,2001:db8::12 \
        --cname=alias.capstan.test,lab.capstan.test \
        --cname=www.capstan.test,alias.capstan.test \
        --txt-record=big.capstan.test,"$txt250","$txt250","$txt250" \
        --dhcp-range=set:lab1,192.0.2.50,192.0.2.99,255.255.255.0,2m \
        --dhcp-option=tag:lab1,option:router,"$NETLAB_GW" --dhcp-option=tag:lab1,option:dns-server,"$NETLAB_GW" \
        --dhcp-range=set:lab2,198.51.100.50,198.51.100.99,255.255.255.0,2m \
        --dhcp-option=tag:lab2,option:router,"$NETLAB_GW2" --dhcp-option=tag:lab2,option:dns-server,"$NETLAB_GW2" \
        --dhcp-option=option:domain-name,capstan.test \
        --dhcp-authoritative --no-ping --dhcp-leasefile="$NETLAB_STATE/dnsmasq.leases"

    sed -e "s|@STATE@|$NETLAB_STATE|g" -e "s|@WWW@|$NETLAB_WWW|g" \
        "$NETLAB_DIR/nginx.conf.in" >"$NETLAB_STATE/nginx.conf"
    netlab_bg nginx nginx -p "$NETLAB_STATE" -c "$NETLAB_STATE/nginx.conf" -e "$NETLAB_STATE/nginx-error.log"
    netlab_bg httpd python3 "$NETLAB_DIR/httpd.py" "$NETLAB_GW" 8080 "$NETLAB_WWW"
    netlab_bg dnsd python3 -u "$NETLAB_DIR/dnsd.py" "$NETLAB_ODD_DNS" 53
    # TCP echo (RFC 862) on the second link: the user NIC's restart test keeps a session open.
    netlab_bg techo python3 -c "import socketserver as s
class Echo(s.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(65536)
            if not d:
                return
            self.request.sendall(d)
s.ThreadingTCPServer.allow_reuse_address = True
s.ThreadingTCPServer(('$NETLAB_GW2', 7), Echo).serve_forever()"

    netlab_wait_for 10 "dnsmasq on $NETLAB_GW:53" netlab_listening udp "$NETLAB_GW" 53 &&
        netlab_wait_for 10 "nginx on $NETLAB_GW:80" netlab_listening tcp "$NETLAB_GW" 80 &&
        netlab_wait_for 10 "httpd.py on $NETLAB_GW:8080" netlab_listening tcp "$NETLAB_GW" 8080 &&
        netlab_wait_for 10 "dnsd.py on $NETLAB_ODD_DNS:53" netlab_listening udp "$NETLAB_ODD_DNS" 53 &&
        netlab_wait_for 10 "TCP echo on $NETLAB_GW2:7" netlab_listening tcp "$NETLAB_GW2" 7 ||
        { netlab_fail_logs; return 1; }
    ln -sfn "$NETLAB_NS" "$NETLAB_BASE/latest"
    netlab_log "up: $NETLAB_GW = DNS 53, DHCP .50-.99, HTTP 80 (nginx), 8080 (httpd.py); $NETLAB_SILENT = silent DNS; $NETLAB_ODD_DNS = odd DNS (dnsd.py)"
}

# netlab_qemu_args GIC MEM SMP [EDU] : lib.sh's qemu_args with the NIC on tap0.
# NETLAB_NIC_OPTS (e.g. ',disable-modern=on,vectors=1') is appended to the NIC's options.
netlab_qemu_args() {
    local args nic='-device virtio-net-pci,addr=3'
    args=$(qemu_args "$@")
    case " $args " in
        *" $nic "*) ;;
        *) netlab_log "qemu_args has no '$nic' any more: update scripts/netlab.d/netlab.sh"; return 1 ;;
    esac
    echo "${args/$nic /-netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0,addr=3,mac=$NETLAB_GUEST_MAC${NETLAB_NIC_OPTS:-} }"
}

# netlab_unet_args : a second virtio-net NIC (modern only, slot $NETLAB_UNET_SLOT) on tap1,
# for a user-mode driver (`driver=vnet@00:0b.0`).
netlab_unet_args() {
    echo -netdev tap,id=n1,ifname=tap1,script=no,downscript=no \
        -device virtio-net-pci,netdev=n1,addr=$(printf 0x%x $NETLAB_UNET_SLOT),mac=$NETLAB_GUEST2_MAC,disable-legacy=on
}

# lab_digests : the lab's file digests as boot arguments (sha1m=, sha16m=), so the guest
# can check its downloads.
lab_digests() {
    awk '$2 == "1m.bin" {printf "sha1m=%s ", $1} $2 == "16m.bin" {printf "sha16m=%s", $1}' \
        "$NETLAB_SUMS"
}

# Bounded: the checks themselves time out after 1-10 s each; the whole run after 120 s.
netlab_selfcheck() {
    NETLAB_SILENT_MODE=$(cat "$NETLAB_STATE/silent-mode" 2>/dev/null) \
        timeout 120 ip netns exec "$NETLAB_NS" python3 "$NETLAB_DIR/selfcheck.py" \
        "$NETLAB_WWW" "$NETLAB_SUMS"
}

netlab_down() {
    [ -n "$NETLAB_NS" ] || return 0
    local pid ns=$NETLAB_NS
    NETLAB_NS=""
    if [ "$NETLAB_KEEP" = 1 ]; then
        netlab_log "kept namespace $ns (logs: ${NETLAB_STATE#"$ROOT"/}); remove it with: scripts/netlab --down $ns"
        return 0
    fi
    for pid in "${NETLAB_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    netlab_kill_ns "$ns"
    # Reap our children (already TERMed or KILLed above), bounded.
    for pid in "${NETLAB_PIDS[@]}"; do
        timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null
    done
    wait "${NETLAB_PIDS[@]}" 2>/dev/null
    NETLAB_PIDS=()
    if netlab_ns_exists "$ns"; then netlab_log "namespace $ns is still present"; return 1; fi
    netlab_log "down: $ns removed"
}
