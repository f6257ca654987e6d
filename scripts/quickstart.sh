#!/usr/bin/env bash
# cairn in two minutes: build it, make a local repository, mount it, back up a directory
# through the mount's control files and look at the point.
#
#   scripts/quickstart.sh [DIR]
#
# DIR is the directory to back up (default: a small sample tree made for the purpose).
# Everything lives under CAIRN_QUICKSTART_HOME (default ~/.local/share/cairn):
#   quickstart-repo/            the repository, encrypted
#   quickstart-repo.password    its generated password (mode 0600), given to cairn with
#                               --password-file
#   mnt/                        where it is mounted
#   sample/                     the sample tree (when no DIR is given)
# Running it again reuses the repository and, if it is still mounted, the mount; it
# takes one more point.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HOME_DIR=${CAIRN_QUICKSTART_HOME:-${HOME:?HOME is not set}/.local/share/cairn}
REPO=$HOME_DIR/quickstart-repo
PASSWORD_FILE=$HOME_DIR/quickstart-repo.password
MNT=$HOME_DIR/mnt

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

case "${1:-}" in
  -h|--help) sed -n 2,16p "$0"; exit 0 ;;
esac
[ $# -le 1 ] || die "usage: $0 [DIR]"

# --- prerequisites ------------------------------------------------------------------
if ! command -v fusermount3 >/dev/null; then
  say "installing fuse3 (fusermount3 is missing)"
  command -v apt-get >/dev/null || die "install fuse3 with your package manager, then run this again"
  SUDO=
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fuse3 >/dev/null
fi
[ -e /dev/fuse ] || die "/dev/fuse is missing: load the fuse module (modprobe fuse), or in a container run with --device /dev/fuse --cap-add SYS_ADMIN"

say "building cairn (release)"
(cd "$ROOT" && cargo build --release -q -p cairn-cli)
CAIRN=${CARGO_TARGET_DIR:-$ROOT/target}/release/cairn
[ -x "$CAIRN" ] || die "the build did not produce $CAIRN"
CAIRN=$(cd "$(dirname "$CAIRN")" && pwd)/cairn

mkdir -p "$HOME_DIR" "$MNT"
HOME_DIR=$(cd "$HOME_DIR" && pwd)
REPO=$HOME_DIR/quickstart-repo
PASSWORD_FILE=$HOME_DIR/quickstart-repo.password
MNT=$HOME_DIR/mnt

# --- what to back up ----------------------------------------------------------------
if [ $# -eq 1 ]; then
  [ -d "$1" ] || die "$1 is not a directory"
  SRC=$(cd "$1" && pwd)
else
  SRC=$HOME_DIR/sample
  if [ ! -d "$SRC" ]; then
    say "making a sample tree in $SRC"
    mkdir -p "$SRC/docs/notes/2026" "$SRC/config" "$SRC/data"
    printf 'hello from cairn\n' > "$SRC/README.txt"
    printf 'first note\n' > "$SRC/docs/notes/2026/first.md"
    printf '[server]\nport = 8080\n' > "$SRC/config/app.toml"
    head -c 1048576 /dev/urandom > "$SRC/data/random.bin"
    seq 1 20000 > "$SRC/data/numbers.txt"
    ln -s config/app.toml "$SRC/app.toml"
    chmod 600 "$SRC/config/app.toml"
  fi
fi
# An instance name: the directory's name, reduced to A-Z a-z 0-9 _ -.
NAME=$(basename "$SRC" | tr -c 'A-Za-z0-9_-' '-' | sed 's/^-*//; s/-*$//' | cut -c1-64)
[ -n "$NAME" ] || NAME=quickstart

# --- the repository -------------------------------------------------------------------
if [ -f "$REPO/config" ]; then
  say "reusing the repository $REPO"
  [ -f "$PASSWORD_FILE" ] || die "$REPO exists but its password file $PASSWORD_FILE is gone: move the repository away to start afresh"
else
  say "creating an encrypted repository at $REPO"
  if [ ! -f "$PASSWORD_FILE" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n=' > "$PASSWORD_FILE")
  fi
  chmod 600 "$PASSWORD_FILE"
  "$CAIRN" init --password-file "$PASSWORD_FILE" "$REPO"
fi
echo "password: generated, in $PASSWORD_FILE (mode 0600); cairn reads it with --password-file" >&2

# --- the mount ------------------------------------------------------------------------
mounted() { awk -v m="$MNT" '$5 == m && / - fuse.cairn /' /proc/self/mountinfo | grep -q .; }
if mounted && [ -d "$MNT/.cairn/ctl" ]; then
  grep -qF "$REPO" "$MNT/.cairn/stats" \
    || die "$MNT holds another cairn repository: \`cairn umount $MNT\` first"
  say "reusing the mount at $MNT"
else
  if mounted; then
    say "clearing a mount at $MNT whose daemon is gone"
    "$CAIRN" umount "$MNT"
  fi
  say "mounting $REPO at $MNT"
  "$CAIRN" mount --background --password-file "$PASSWORD_FILE" "$REPO" "$MNT"
fi
export CAIRN_MOUNT=$MNT

# --- an instance and a point, through the control files -------------------------------
say "adding $SRC as instance $NAME (writes into $MNT/.cairn/ctl/instance)"
"$CAIRN" instance add "$NAME" --path "$SRC"

say "taking a snapshot (writes into $MNT/.cairn/ctl/snapshot, follows the job)"
"$CAIRN" snapshot "$NAME" --label quickstart
POINT=$("$CAIRN" points "$NAME" | tail -n 1)
[ -n "$POINT" ] || die "no point appeared in $MNT/$NAME"

say "the point $NAME/$POINT, as files"
ls -la "$MNT/$NAME/$POINT"

cat <<EOF

== done. What next (CAIRN_MOUNT tells cairn where the mount is):

  export CAIRN_MOUNT=$MNT

Browse: every point is a read-only directory, latest points at the newest
  ls -la $MNT/$NAME/
  cd $MNT/$NAME/latest && less README.txt   # or diff, find, grep, cp -a, rsync -a

Restore, with the CLI (follows the job, exit 1 if it fails):
  $CAIRN restore $NAME $POINT --target /tmp/restored-$NAME
  $CAIRN restore $NAME latest --mode in-place     # over $SRC, after a safety point

Restore, with a plain write into the control file (then watch the job):
  echo 'instance=$NAME point=latest target=/tmp/restored-$NAME-2' > $MNT/.cairn/ctl/restore
  ls $MNT/.cairn/jobs/ && cat $MNT/.cairn/jobs/<ID>/status

More: $CAIRN points $NAME | $CAIRN jobs | $CAIRN verify | cat $MNT/.cairn/README

Unmount (run this script again to mount it again and take another point):
  $CAIRN umount $MNT
EOF
