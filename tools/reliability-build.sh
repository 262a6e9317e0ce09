# Sourced by tools/faults.sh and tools/soak.sh: builds one reliability tool
# with the engine's sources (of the work tree, or of commit REV) through
# build.zig, which holds the source list and each tool's optimisation level.
#   reliability_build NAME CC [REV]   -> build/reliability/NAME  (./zigw build NAME)
# On failure prints the reason and "0 passed, 1 failed" and exits 1.
reliability_build() {
  local name="$1" cc="$2" rev="${3:-}"
  local out=build/reliability uv_archive=/usr/lib/x86_64-linux-gnu/libuv_a.a
  local engine_root=()
  mkdir -p "$out"
  command -v "$cc" >/dev/null || cc=cc
  if [ -n "$rev" ]; then
    local src_root="$out/src-$name-$(git rev-parse --short "$rev")"
    rm -rf "$src_root" && mkdir -p "$src_root" &&
      git archive "$rev" src include | tar -x -C "$src_root" || { echo "0 passed, 1 failed"; exit 1; }
    engine_root=(-Dengine-root="$src_root")
  fi
  if [ ! -f "$uv_archive" ] || ! ./zigw build "$name" -Dchecked-cc="$cc" "${engine_root[@]}" --prefix build; then
    echo "$name: build failed (needs $cc and $uv_archive from libuv1-dev)"
    echo "0 passed, 1 failed"
    exit 1
  fi
}
