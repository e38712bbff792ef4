# Sourced by scripts/setup, scripts/test and bench/: puts rustup's cargo on PATH and picks the
# target berth is built for, exported as CARGO_BUILD_TARGET so that every cargo command (build,
# clippy, test) agrees; BERTH_BIN is where that target's binary of the `dist` profile (the one
# installed and benchmarked: Cargo.toml says why) lands.
#
# berth is built as a static musl binary. glibc's start-up (in ld.so, and just as much when
# linked statically) sizes the CPU caches with about a hundred CPUID instructions, and on a
# virtual machine each one traps to the hypervisor: half a millisecond of every berth command
# on the VMs berth is developed on, which musl does not spend. Where the musl target cannot be
# installed, berth is built for the host's glibc target instead: the same program, slower to
# start.
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
if [ -z "${CARGO_BUILD_TARGET:-}" ]; then
  berth_musl="$(uname -m)-unknown-linux-musl"
  # musl-gcc builds the C parts of dependencies (zstd) for musl.
  if command -v musl-gcc >/dev/null 2>&1 && command -v rustup >/dev/null 2>&1 &&
    { rustup target list --installed 2>/dev/null | grep -qx "$berth_musl" ||
      rustup target add "$berth_musl" >/dev/null 2>&1; }; then
    export CARGO_BUILD_TARGET=$berth_musl
  else
    CARGO_BUILD_TARGET=$(rustc -vV | sed -n 's/^host: //p')
    export CARGO_BUILD_TARGET
    echo "berth: building for $CARGO_BUILD_TARGET: the musl target could not be installed, so every berth command starts ~0.5 ms slower" >&2
  fi
fi
BERTH_BIN="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/$CARGO_BUILD_TARGET/dist/berth"
