#!/usr/bin/env bash
# Set up everything the tests need, then run the whole suite.
# As root it installs the system packages (bubblewrap for the process tier, docker.io and
# debootstrap for the docker tier), starts dockerd and builds the local sandbox image; as
# another user those tests are skipped with a reason when the pieces are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=""
  for pkg in bubblewrap docker.io debootstrap git; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
  done
  if [ -n "$missing" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
fi
if command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (dockerd >/tmp/toolzoo-dockerd.log 2>&1 &)
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
scripts/setup.sh dev,train
if docker info >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  # The local sandbox image (no registry needed); pins its packages to the venv's versions.
  PATH="$PWD/.venv/bin:$PATH" VIRTUAL_ENV="$PWD/.venv" bash toolzoo/sandbox/image/build.sh
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OMP_WAIT_POLICY=PASSIVE
# (-p no:hypothesispytest --assert=plain: CPython 3.11.7 can crash while formatting a failure
# report through those two and through pytest's own traceback; hypothesis tests still run.)
exec .venv/bin/python -m pytest -q -p no:cacheprovider -p no:hypothesispytest --assert=plain --tb=native "$@"
