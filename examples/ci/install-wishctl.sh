#!/usr/bin/env bash
# Puts `wishctl` on the PATH of a CI job, one of two ways:
#   WISHCTL_VERSION=0.1.0    a released binary: downloads wishctl-VERSION-<arch>-linux.tar.gz and
#                            SHA256SUMS from the release, checks the sum, unpacks it (seconds).
#                            It carries the handler zips of its version and deploys those.
#   WISHCTL_VERSION=source   built from this checkout with the handler zips of the same sources
#                            (minutes); the workflow caches WISHCTL_HOME keyed by Cargo.lock and the
#                            sources, so only a change to them pays for the build again.
# WISHCTL_HOME (default ~/.wishctl) receives bin/wishctl, which is not on the PATH by itself: the
# script adds it for the next steps of a GitHub job (GITHUB_PATH) and otherwise prints the
# `export PATH=...` line to add. WISHCTL_RELEASES (default
# https://github.com/wishctl/wishctl/releases/download) is where releases are downloaded from.
set -euo pipefail
version=${WISHCTL_VERSION:?set WISHCTL_VERSION to a release such as 0.1.0, or to "source"}
home=${WISHCTL_HOME:-$HOME/.wishctl}
mkdir -p "$home/bin"
case "$(uname -m)" in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "install-wishctl: no wishctl release for $(uname -m)" >&2; exit 1 ;;
esac

if [ "$version" = source ]; then
  if [ -x "$home/bin/wishctl" ]; then
    echo "install-wishctl: restored from the cache" >&2
  else
    repo=$(cd "$(dirname "$0")/../.." && pwd)
    echo "install-wishctl: building wishctl and its handler zips from $repo" >&2
    (cd "$repo" && cargo xtask dist --out-dir "$home/dist")
    (cd "$repo" && WISHCTL_EMBED_DIST="$home/dist" cargo install --locked --path deploy --root "$home")
  fi
else
  base=${WISHCTL_RELEASES:-https://github.com/wishctl/wishctl/releases/download}/v$version
  name=wishctl-$version-$arch-linux.tar.gz
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  curl -fsSL --retry 3 --max-time 300 -o "$tmp/$name" "$base/$name"
  curl -fsSL --retry 3 --max-time 60 -o "$tmp/SHA256SUMS" "$base/SHA256SUMS"
  if ! (cd "$tmp" && grep -E "^[0-9a-f]{64}  $name\$" SHA256SUMS | sha256sum --quiet -c -); then
    echo "install-wishctl: $name does not match the SHA256SUMS of release v$version; not installed" >&2
    exit 1
  fi
  tar -xzf "$tmp/$name" -C "$home/bin" wishctl
fi

"$home/bin/wishctl" --version
if [ -n "${GITHUB_PATH:-}" ]; then
  echo "$home/bin" >>"$GITHUB_PATH"
fi
# Say whether `wishctl` works as a bare command now, and if not, the line that makes it so.
case ":$PATH:" in
  *":$home/bin:"*) echo "install-wishctl: installed $home/bin/wishctl (on the PATH)" >&2 ;;
  *)
    if [ -n "${GITHUB_PATH:-}" ]; then
      echo "install-wishctl: installed $home/bin/wishctl; the job's next steps have $home/bin on the PATH (GITHUB_PATH)" >&2
    else
      echo "install-wishctl: installed $home/bin/wishctl, but $home/bin is not on the PATH; add it (here, and in ~/.bashrc or ~/.profile for new shells):" >&2
      printf '  export PATH="%s:$PATH"\n' "$home/bin" >&2
    fi
    ;;
esac
