#!/bin/sh
# The build stage of deploy/Dockerfile, as a script so that it can also run
# (and be tested) outside Docker:
#
#   deploy/docker-build.sh [DESTDIR]
#
# From the repository root (the Dockerfile's WORKDIR): builds ratepool with
# -Werror into $BUILD (default build/docker), runs its --version as a smoke
# test, and installs it, stripped, under DESTDIR (default ./stage) as
# DESTDIR/usr/local/bin/ratepool. The runtime stage copies DESTDIR/ to /.
#
# Needs the packages of `deploy/install-deps.sh --build` (the Dockerfile
# installs them first). tests/integration/test_deploy.py runs this script
# on the test machine with DESTDIR in a temporary directory.
set -eu

dest=${1:-stage}
build=${BUILD:-build/docker}
jobs=$(nproc 2>/dev/null || echo 2)

case "$dest" in
/*) ;;
*) dest=$(pwd)/$dest ;;
esac

make -j"$jobs" BUILD="$build" WERROR=1 "$build/ratepool"
"$build/ratepool" --version
make BUILD="$build" DESTDIR="$dest" PREFIX=/usr/local install
# Symbols are for debugging the build tree, not for the image.
strip --strip-unneeded "$dest/usr/local/bin/ratepool"
echo "docker-build: installed $dest/usr/local/bin/ratepool"
