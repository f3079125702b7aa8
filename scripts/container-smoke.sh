#!/usr/bin/env bash
# Smoke checks for a built baton-torq image; CI's docker job, the release workflow and a developer run the same:
#
#   docker build -t baton-torq . && scripts/container-smoke.sh baton-torq
#
# Checks: `--version` names baton-torq; `capabilities` matches baton_capabilities.json; `demo` runs; `demo` into a
# mounted /out as the image's user (0600 file owned by it) and with --user (file owned by that uid); a mounted
# folder the image's user cannot write fails with exit 2 and the --user hint; non-root user; image < 100 MB and
# binary < 16 MB (MB = 10^6 bytes). Needs docker and nothing else: `demo` talks to its own simulated Torq on the
# container's loopback, so every run is --network none. Last line: "container-smoke: OK ..." or "... FAIL <what>".
set -euo pipefail

IMAGE=${1:?usage: scripts/container-smoke.sh IMAGE}
MAX_IMAGE_BYTES=100000000
MAX_BINARY_BYTES=16000000
IMAGE_UID=65532
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK" 2>/dev/null || true' EXIT

fail() { echo "container-smoke: FAIL $*" >&2; exit 1; }
ok() { echo "ok   $*"; }
run() { docker run --rm --network none "$@"; }

version=$(run "$IMAGE" --version) || fail "--version exited non-zero"
case "$version" in "baton-torq version v"*) ok "--version: $version" ;; *) fail "--version printed '$version'" ;; esac

if [ -f "$ROOT/baton_capabilities.json" ]; then
  run "$IMAGE" capabilities | diff -q - "$ROOT/baton_capabilities.json" >/dev/null \
    || fail "capabilities differ from baton_capabilities.json"
  ok "capabilities match baton_capabilities.json"
fi

run "$IMAGE" demo >"$WORK/demo.log" 2>&1 || fail "demo: $(tail -1 "$WORK/demo.log")"
ok "demo"

uid=$(run --entrypoint id "$IMAGE" -u) || fail "id -u in the image"
[ "$uid" != 0 ] || fail "the image runs as root"
ok "runs as uid $uid"

# The image's own user writes into a mounted folder it may write (here world-writable).
out=$WORK/out-image-user; mkdir "$out"; chmod 777 "$out"
run -v "$out:/out" "$IMAGE" demo >"$WORK/demo-out.log" 2>&1 || fail "demo into /out: $(tail -1 "$WORK/demo-out.log")"
[ -s "$out/demo.c1z" ] || fail "no demo.c1z in the mounted /out"
[ "$(stat -c '%u %a' "$out/demo.c1z")" = "$IMAGE_UID 600" ] \
  || fail "demo.c1z is $(stat -c 'uid %u mode %a' "$out/demo.c1z"), expected uid $IMAGE_UID mode 600"
ok "demo into a mounted /out as the image's user (uid $IMAGE_UID, mode 0600)"

# The README's form: --user of the folder's owner (uid 1000 when this script runs as root).
if [ "$(id -u)" = 0 ]; then owner=1000:1000; else owner="$(id -u):$(id -g)"; fi
out=$WORK/out-user; mkdir "$out"; chown "$owner" "$out"; chmod 700 "$out"
run --user "$owner" -v "$out:/out" "$IMAGE" demo >"$WORK/demo-user.log" 2>&1 \
  || fail "demo with --user $owner: $(tail -1 "$WORK/demo-user.log")"
[ "$(stat -c '%u:%g %a' "$out/demo.c1z" 2>/dev/null)" = "$owner 600" ] \
  || fail "demo.c1z after --user $owner: $(stat -c 'uid:gid %u:%g mode %a' "$out/demo.c1z" 2>&1)"
ok "demo with --user $owner into a folder only that user may write"

# A folder the image's user may not write: exit 2 and one line naming the fix.
out=$WORK/out-denied; mkdir "$out"; chown "$owner" "$out"; chmod 755 "$out"
set +e
# A real sync (the image's default command) with dummy credentials: the output is locked before Torq is called.
run -v "$out:/out" "$IMAGE" --torq-client-id smoke --torq-client-secret smoke --log-format console \
  >/dev/null 2>"$WORK/denied.log"
code=$?
set -e
[ "$code" = 2 ] || fail "unwritable /out exited $code, expected 2: $(tail -1 "$WORK/denied.log")"
[ "$(wc -l <"$WORK/denied.log")" = 1 ] && grep -qF -- '--user "$(id -u):$(id -g)"' "$WORK/denied.log" \
  || fail "unwritable /out did not print the one-line --user hint: $(cat "$WORK/denied.log")"
ok "unwritable /out: exit 2, $(cut -c1-100 "$WORK/denied.log")..."

size=$(docker image inspect "$IMAGE" --format '{{.Size}}')
binary=$(run --entrypoint stat "$IMAGE" -c %s /usr/local/bin/baton-torq)
[ "$size" -lt "$MAX_IMAGE_BYTES" ] || fail "image is $size bytes, limit $MAX_IMAGE_BYTES"
[ "$binary" -lt "$MAX_BINARY_BYTES" ] || fail "binary is $binary bytes, limit $MAX_BINARY_BYTES"
ok "sizes: image $((size / 1000000)) MB < 100 MB, binary $((binary / 1000000)) MB < 16 MB"

echo "container-smoke: OK $IMAGE: image $size bytes, binary $binary bytes, runs as uid $uid"
