#!/usr/bin/env bash
# Release packaging, as the release workflow (.github/workflows/release.yml) runs it:
#   1. both Lambda zips (cargo xtask dist) into OUT/dist;
#   2. wishctl for linux x86_64 and arm64 (static musl, release profile), built with
#      WISHCTL_EMBED_DIST=OUT/dist so that it carries those zips and their SHA-256;
#   3. OUT/assets: wishctl-VERSION-<arch>-linux.tar.gz (one file, `wishctl`), bootstrap-arm64.zip,
#      bootstrap-x86_64.zip and SHA256SUMS;
#   4. checks: the sums, each tarball's layout, each binary's ELF machine (static, with
#      --release), `wishctl --version` (arm64 under qemu-aarch64 when present), and, against moto,
#      that the packaged wishctl run from an empty folder deploys the zip it carries for each
#      architecture (`plan --artifact <that zip>` then finds nothing to change) and tears it down.
#
# usage: scripts/package.sh [--check] [--out DIR] [--target TRIPLE]... [--dist DIR]
#   --check   CI's quick variant: wishctl for this machine only, dev profile, in the usual target
#             folder, built as `cargo test --workspace` builds it (after that, only the deploy
#             crate is rebuilt); every check above still runs.
#   --out     output folder (default target/package).
#   --target  build only these musl targets (release mode).
#   --dist    package the zips already in DIR (bootstrap-arm64.zip, bootstrap-x86_64.zip) instead
#             of running cargo xtask dist.
# moto: WISHCTL_MOTO_ENDPOINT when set, else .venv/bin/moto_server (scripts/setup.sh --test).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

mode=release
out=target/package
targets=()
prebuilt_dist=
while [ $# -gt 0 ]; do
  case "$1" in
    --check) mode=check ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    --target) targets+=("${2:?--target needs a triple}"); shift ;;
    --dist) prebuilt_dist=${2:?--dist needs a folder}; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "package.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)

step() { printf '\n== %s\n' "$*" >&2; }
fail() { echo "package.sh: FAILED: $*" >&2; exit 1; }

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
[ -n "$version" ] || fail "no version in [workspace.package] of Cargo.toml"
mkdir -p "$out"
out=$(cd "$out" && pwd)
dist="$out/dist"
assets="$out/assets"
rm -rf "$assets"
mkdir -p "$dist" "$assets"

arch_of_target() {
  case "$1" in
    x86_64-*) echo x86_64 ;;
    aarch64-*) echo arm64 ;;
    *) fail "unsupported target $1" ;;
  esac
}
# ELF e_machine and whether the binary asks for a dynamic loader (PT_INTERP).
elf_info() {
  python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
    sys.exit(f"{sys.argv[1]} is not a 64-bit little-endian ELF")
machine = struct.unpack_from("<H", data, 18)[0]
phoff, = struct.unpack_from("<Q", data, 32)
phentsize, phnum = struct.unpack_from("<HH", data, 54)
interp = any(struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 3 for i in range(phnum))
print({62: "x86_64", 183: "arm64"}.get(machine, f"machine-{machine}"), "dynamic" if interp else "static")
PY
}
sha256_base64() { python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha256(open(sys.argv[1],"rb").read()).digest()).decode())' "$1"; }

started=$(date +%s)
if [ -n "$prebuilt_dist" ]; then
  step "Lambda zips from $prebuilt_dist -> $dist"
  cp "$prebuilt_dist/bootstrap-arm64.zip" "$prebuilt_dist/bootstrap-x86_64.zip" "$dist/"
else
  step "Lambda zips (cargo xtask dist) -> $dist"
  cargo xtask dist --out-dir "$dist"
fi
for arch in arm64 x86_64; do
  [ -s "$dist/bootstrap-$arch.zip" ] || fail "cargo xtask dist wrote no $dist/bootstrap-$arch.zip"
  cp "$dist/bootstrap-$arch.zip" "$assets/"
done

# (triple-or-host, arch, binary path)
built=()
if [ "$mode" = check ]; then
  host_arch=$(arch_of_target "$(uname -m)-")
  step "wishctl for this machine ($host_arch, dev profile) carrying the zips"
  # Built the way `cargo test --workspace` builds it (as the binary of deploy's integration
  # tests, one of which is named here), so that every dependency keeps the features that build
  # gave it and only deploy is compiled again; `cargo build -p deploy` resolves features for
  # deploy alone and recompiled the AWS SDK crates (six minutes of CI).
  WISHCTL_EMBED_DIST="$dist" cargo test --locked --workspace --no-run --test cli
  built+=("host $host_arch $root/target/debug/wishctl")
else
  # One cargo run for every target: the builds overlap (each ends in a one-core fat-LTO link).
  step "wishctl for ${targets[*]} (release) carrying the zips"
  WISHCTL_EMBED_DIST="$dist" cargo build --locked --release -p deploy --bin wishctl \
    "${targets[@]/#/--target=}"
  for target in "${targets[@]}"; do
    arch=$(arch_of_target "$target")
    built+=("$target $arch ${CARGO_TARGET_DIR:-$root/target}/$target/release/wishctl")
  done
fi

step "assets -> $assets"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
for entry in "${built[@]}"; do
  read -r _ arch binary <<<"$entry"
  name="wishctl-$version-$arch-linux"
  mkdir -p "$stage/$name"
  cp "$binary" "$stage/$name/wishctl"
  chmod 0755 "$stage/$name/wishctl"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
      -C "$stage/$name" -czf "$assets/$name.tar.gz" wishctl
done
(cd "$assets" && sha256sum -- * >SHA256SUMS)
cat "$assets/SHA256SUMS" >&2

step "checks: sums, layout, binaries"
(cd "$assets" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match the assets"
expected_count=$(( 2 + ${#built[@]} + 1 ))
[ "$(ls "$assets" | wc -l)" -eq "$expected_count" ] || fail "expected $expected_count files in $assets: $(ls "$assets")"
for entry in "${built[@]}"; do
  read -r _ arch _ <<<"$entry"
  name="wishctl-$version-$arch-linux"
  [ "$(tar -tzf "$assets/$name.tar.gz")" = "wishctl" ] || fail "$name.tar.gz must hold exactly one file, wishctl"
  mkdir -p "$stage/unpacked-$arch"
  tar -xzf "$assets/$name.tar.gz" -C "$stage/unpacked-$arch"
  bin="$stage/unpacked-$arch/wishctl"
  [ -x "$bin" ] || fail "$name.tar.gz: wishctl is not executable"
  read -r machine linkage < <(elf_info "$bin")
  [ "$machine" = "$arch" ] || fail "$name.tar.gz: wishctl is built for $machine, not $arch"
  if [ "$mode" = release ] && [ "$linkage" != static ]; then
    fail "$name.tar.gz: wishctl is dynamically linked; a release binary must be static"
  fi
  runner=()
  if [ "$arch" != "$(arch_of_target "$(uname -m)-")" ]; then
    if command -v qemu-aarch64 >/dev/null; then runner=(qemu-aarch64); else
      echo "package.sh: no qemu-aarch64: not running the $arch binary" >&2; continue; fi
  fi
  got=$("${runner[@]}" "$bin" --version)
  [ "$got" = "wishctl $version" ] || fail "$name: --version printed '$got', expected 'wishctl $version'"
  echo "ok: $name.tar.gz ($machine, $linkage, $(stat -c %s "$assets/$name.tar.gz") bytes): $got" >&2
done

step "checks: the packaged wishctl deploys the zips it carries, from an empty folder (moto)"
host_arch=$(arch_of_target "$(uname -m)-")
bin="$stage/unpacked-$host_arch/wishctl"
[ -x "$bin" ] || fail "no wishctl for this machine ($host_arch) was packaged to run the deploy check"
endpoint=${WISHCTL_MOTO_ENDPOINT:-}
if [ -z "$endpoint" ]; then
  [ -x .venv/bin/moto_server ] || fail "no moto: run scripts/setup.sh --test or set WISHCTL_MOTO_ENDPOINT"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$stage/moto.log" 2>&1 &
  moto_pid=$!
  trap 'kill $moto_pid 2>/dev/null || true; rm -rf "$stage"' EXIT
  endpoint="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -fsS "$endpoint/moto-api/" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fsS "$endpoint/moto-api/" >/dev/null || fail "moto did not start; see $stage/moto.log"
fi
empty="$stage/empty-folder"
mkdir -p "$empty"
export AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing \
  AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true XDG_CACHE_HOME="$stage/cache"
unset AWS_PROFILE
for arch in arm64 x86_64; do
  stack="pkg-check-${arch//_/-}"
  (cd "$empty" && "$bin" up --stack "$stack" --arch "$arch" --issuer https://issuer.example.com/ \
      --audience package-check --output json >"$stage/up-$arch.json" 2>"$stage/up-$arch.err") \
    || { cat "$stage/up-$arch.err" >&2; fail "up --arch $arch from an empty folder failed"; }
  grep -q "code: the handler zip carried by wishctl $version" "$stage/up-$arch.err" \
    || { cat "$stage/up-$arch.err" >&2; fail "up --arch $arch did not say it used the carried zip"; }
  # plan with the dist zip as --artifact changes nothing only if the function runs that zip.
  (cd "$empty" && "$bin" plan --stack "$stack" --arch "$arch" --issuer https://issuer.example.com/ \
      --audience package-check --artifact "$dist/bootstrap-$arch.zip" --detailed-exitcode \
      >"$stage/plan-$arch.txt" 2>&1) \
    || { cat "$stage/plan-$arch.txt" >&2; fail "the $arch function does not run the carried zip"; }
  deployed=$(sha256_base64 "$dist/bootstrap-$arch.zip")
  (cd "$empty" && "$bin" down --stack "$stack" --delete-data >/dev/null 2>"$stage/down-$arch.err") \
    || { cat "$stage/down-$arch.err" >&2; fail "down of $stack failed"; }
  echo "ok: $arch: deployed the carried zip (CodeSha256 $deployed) and tore it down" >&2
done
[ -z "$(ls -A "$empty")" ] || fail "wishctl wrote into the folder it ran in: $(ls -A "$empty")"

echo "package.sh: $mode OK in $(( $(date +%s) - started ))s; assets in $assets" >&2
