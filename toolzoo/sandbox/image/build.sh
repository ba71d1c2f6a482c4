#!/usr/bin/env bash
# Build the toolzoo sandbox image from local files only (no image registry needed).
#
#   bash toolzoo/sandbox/image/build.sh            # builds toolzoo-base:bookworm, then toolzoo-sandbox:latest
#   FORCE=1 bash toolzoo/sandbox/image/build.sh    # rebuild the sandbox image even if present
#
# Steps (each skipped when already done, so re-running is cheap):
#   1. debootstrap a minimal Debian bookworm root (python3, python3-venv) from the Debian
#      mirror apt already uses, and `docker import` it as toolzoo-base:bookworm;
#   2. build a wheel of toolzoo and download/wheel the tool server's runtime dependencies
#      (pinned to the versions in the current Python environment) into a local dir;
#   3. build toolzoo-sandbox:latest FROM the base with Dockerfile.local, installing with
#      --no-index --find-links (no network inside the build).
# Needs: root (debootstrap), a running dockerd, debootstrap, python3 with pip (the toolzoo venv).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
BASE_IMAGE="${TOOLZOO_BASE_IMAGE:-toolzoo-base:bookworm}"
IMAGE="${TOOLZOO_IMAGE:-toolzoo-sandbox:latest}"
CACHE="${TOOLZOO_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/toolzoo/image}"
PY="${PYTHON:-python3}"
DOCKER="${DOCKER:-docker}"
mkdir -p "$CACHE"

log() { echo "[toolzoo image] $*" >&2; }

mirror() {
  # The Debian mirror apt uses: deb822 sources first, then the classic list.
  local m=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1 || true)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# 1. base image
if $DOCKER image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE present"
else
  ROOTFS="$CACHE/rootfs"
  if [ ! -f "$ROOTFS/.toolzoo-debootstrap-done" ]; then
    rm -rf "$ROOTFS"
    MIRROR="$(mirror)"
    log "debootstrap bookworm from $MIRROR into $ROOTFS"
    debootstrap --variant=minbase --include=python3,python3-venv bookworm "$ROOTFS" "$MIRROR"
    # Shrink: apt caches and docs are not needed at run time.
    rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/*
    touch "$ROOTFS/.toolzoo-debootstrap-done"
  fi
  log "docker import -> $BASE_IMAGE"
  tar -C "$ROOTFS" --exclude=./.toolzoo-debootstrap-done -c . | $DOCKER import - "$BASE_IMAGE"
fi

# 2. wheels
CTX="$CACHE/context"
WHEELS="$CTX/wheels"
mkdir -p "$WHEELS"
cp "$HERE/Dockerfile.local" "$CTX/Dockerfile"
rm -f "$WHEELS"/toolzoo-*.whl
log "wheel of toolzoo"
# Build from a clean copy of the sources so nothing (build/, *.egg-info) lands in the checkout.
SRC="$CACHE/src"
rm -rf "$SRC" && mkdir -p "$SRC"
cp "$REPO/pyproject.toml" "$REPO/README.md" "$SRC/"
tar -C "$REPO" --exclude='__pycache__' -c toolzoo | tar -C "$SRC" -x
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WHEELS" "$SRC"
# Runtime deps of the tool server (`toolzoo serve-mcp`), pinned to this environment's versions.
REQS="$CTX/requirements.txt"
"$PY" - "$REQS" <<'PYEOF'
import sys
from importlib.metadata import version
names = ["mcp", "pydantic", "pyyaml", "common-expression-language", "jsonschema", "jsonschema-rs", "orjson", "anyio",
         "httpx", "uvicorn", "starlette", "rich"]
with open(sys.argv[1], "w") as f:
    for n in names:
        f.write(f"{n}=={version(n)}\n")
PYEOF
if [ ! -f "$WHEELS/.deps-$(sha256sum "$REQS" | cut -c1-16)" ]; then
  log "downloading runtime dependency wheels"
  "$PY" -m pip download -q --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --platform linux_x86_64 \
      -d "$WHEELS" -r "$REQS" \
    || "$PY" -m pip wheel -q -w "$WHEELS" -r "$REQS"
  touch "$WHEELS/.deps-$(sha256sum "$REQS" | cut -c1-16)"
fi

# 3. sandbox image (rebuilt when the toolzoo wheel changed, or FORCE=1)
# The sum covers the sources (not the wheel, whose zip timestamps change on every build).
SUM="$( (cd "$SRC" && find toolzoo pyproject.toml -type f ! -name '*.pyc' | LC_ALL=C sort | xargs cat; cat "$REQS" "$CTX/Dockerfile") \
       | sha256sum | cut -c1-16)"
HAVE="$($DOCKER image inspect -f '{{ index .Config.Labels "toolzoo.dev/build" }}' "$IMAGE" 2>/dev/null || true)"
if [ "${FORCE:-0}" != "1" ] && [ "$HAVE" = "$SUM" ]; then
  log "image $IMAGE up to date ($SUM)"
else
  log "docker build -> $IMAGE"
  DOCKER_BUILDKIT=0 $DOCKER build -q --network none --build-arg BASE="$BASE_IMAGE" \
      --label "toolzoo.dev/build=$SUM" -t "$IMAGE" "$CTX" >/dev/null
fi
log "ready: $IMAGE"
