#!/usr/bin/env bash
# Prepares a fresh Debian CI machine for the tests (see docs/testing.md). Idempotent and quiet:
# installs only what is missing.
# - simulated machines (test/machines): iproute2 (`ip netns`, veth, bridge), util-linux
#   (`unshare`), mount and coreutils (`chroot`)
# - the Redis store (test/signaling): redis-server; tests start their own on a free loopback port
# - the independent .slp reader (test/slp): Debian's python3-h5py, run with /usr/bin/python3
# - the live page (test/client/ui): Debian's chromium, driven by playwright-core
set -euo pipefail

have() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

need=()
have ip || need+=(iproute2)
have unshare || need+=(util-linux)
have mount || need+=(mount)
have chroot || need+=(coreutils)
have redis-server || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1 || need+=(python3-h5py)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! have apt-get; then
    echo "ci-setup: missing ${need[*]} and cannot install them here (need root and apt-get)" >&2
    exit 1
  fi
  echo "ci-setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The harness asks the kernel for bridges and veth pairs; load the modules if they are modular.
if have modprobe; then
  modprobe -q bridge 2>/dev/null || true
  modprobe -q veth 2>/dev/null || true
fi
