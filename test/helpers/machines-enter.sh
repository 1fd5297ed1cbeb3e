#!/bin/sh
# The POSIX sh program that turns a fresh, private mount namespace into one simulated machine's
# filesystem view, then execs the real command. It runs as
#
#   ip netns exec NS unshare --mount --uts --propagation private \
#     sh machines-enter.sh HOSTNAME ROOT CWD [OP A B]... -- CMD ARGS...
#
# Why a new root: bind targets such as /Volumes/talmo usually have no mountpoint on the host, and a
# directory created on the host would outlive a crashed test. So ROOT (an empty host directory) gets
# a tmpfs that mirrors the host's "/" entry by entry (directories rbind-mounted, files bound, symlinks
# copied). Missing parts of a target are then created in tmpfs: when a target's nearest existing
# ancestor is a host directory, that directory is "shadowed" (replaced in this view by a tmpfs that
# mirrors it the same way) before the new child is made. Finally the command is chroot-ed into ROOT.
# Every mount lives only in this namespace and disappears with its last process; the host is never
# written to.
#
# Each step execs the next (ip netns exec, unshare, sh, chroot, sh, CMD), so the pid the test holds
# is the pid of CMD itself and killing it kills the real process.
#
# Ops: `bind SRC TARGET` (read-write bind), `robind SRC TARGET` (read-only bind), `file SRC TARGET`
# (bind a file over an existing file, e.g. /etc/hosts), `hide PATH -` (empty tmpfs over a directory).
# Target paths are checked by test/helpers/machines.ts before they get here.
# Harness failures exit 125 with a line starting "sim-machine:" on stderr.
#
set -eu
die() { echo "sim-machine: $*" >&2; exit 125; }
[ $# -ge 4 ] || die "usage: HOSTNAME ROOT CWD [OP A B]... -- CMD ARGS..."
name=$1; root=$2; cwd=$3; shift 3
printf '%s' "$name" > /proc/sys/kernel/hostname || die "cannot set hostname"

nl='
'
writable=$nl

# Makes $root$1 a tmpfs with the same entries as host directory $1 ("" for /).
shadow() {
  src=$1
  mode=$(stat -c %a "${src:-/}") || die "cannot stat ${src:-/}"
  mount -t tmpfs -o "mode=$mode" srtcsim "$root$src" || die "cannot mount tmpfs on $root$src"
  for e in "$src"/* "$src"/.[!.]* "$src"/..?*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    if [ -L "$e" ]; then cp -P "$e" "$root$e"
    elif [ -d "$e" ]; then mkdir "$root$e" && mount --rbind "$e" "$root$e"
    else : > "$root$e" && mount --bind "$e" "$root$e"
    fi || die "cannot mirror $e"
  done
  writable=$writable$src$nl
}

# Creates directory $1 (absolute) in the view, shadowing the nearest existing host ancestor.
ensure_dir() {
  p=''
  rest=${1#/}
  while [ -n "$rest" ]; do
    c=${rest%%/*}
    case $rest in */*) rest=${rest#*/} ;; *) rest='' ;; esac
    next=$p/$c
    if [ -L "$root$next" ]; then die "$next is a symlink in the machine's view; use the real path"; fi
    if [ ! -e "$root$next" ]; then
      case $writable in *"$nl$p$nl"*) ;; *) shadow "$p" ;; esac
      mkdir "$root$next" || die "cannot create $next"
      writable=$writable$next$nl
    elif [ ! -d "$root$next" ]; then
      die "$next exists and is not a directory"
    fi
    p=$next
  done
}

shadow ''
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  [ $# -ge 3 ] || die "incomplete op $1"
  op=$1; a=$2; b=$3; shift 3
  case $op in
    bind|robind)
      [ -d "$a" ] || die "bind source $a is not a directory"
      ensure_dir "$b"
      mount --bind "$a" "$root$b" || die "cannot bind $a at $b"
      if [ "$op" = robind ]; then mount -o remount,bind,ro "$root$b" || die "cannot make $b read-only"; fi
      ;;
    file)
      [ -f "$root$b" ] || die "file target $b does not exist in the machine's view"
      mount --bind "$a" "$root$b" || die "cannot bind file $a at $b"
      ;;
    hide)
      [ -d "$root$a" ] || die "hide target $a is not a directory"
      mount -t tmpfs -o mode=0755 srtcsim-hidden "$root$a" || die "cannot hide $a"
      ;;
    *) die "unknown op $op" ;;
  esac
done
[ $# -ge 2 ] || die "no command given"
shift
exec chroot "$root" /bin/sh -c 'cd "$1" 2>/dev/null || { echo "sim-machine: no directory $1 in the machine" >&2; exit 125; }
  unset OLDPWD PWD; shift; exec "$@"' sim-machine "$cwd" "$@"
