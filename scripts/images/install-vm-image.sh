#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# meson install script: installs the built-in image's VM pieces into
# DATADIR (absolute; under $DESTDIR) when `ninja vm-image` has built them
# in BUILD_DIR.  They are built on demand only (the first build downloads
# the Debian kernel package), so a build without them installs none.
set -eu
build_dir=$1 datadir=$2
for f in vmlinuz initramfs.cpio.gz; do
  if [ -f "$build_dir/$f" ]; then
    install -D -m 644 "$build_dir/$f" "${DESTDIR:-}$datadir/$f"
  fi
done
