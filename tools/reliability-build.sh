# Sourced by tools/faults.sh and tools/soak.sh: builds one reliability tool
# against the engine's C sources (of the work tree, or of commit REV).
#   reliability_build NAME OPT_LEVEL CC [REV]   -> build/reliability/NAME
# On failure prints the reason and "0 passed, 1 failed" and exits 1.
reliability_build() {
  local name="$1" opt="$2" cc="$3" rev="${4:-}"
  local out=build/reliability uv_archive=/usr/lib/x86_64-linux-gnu/libuv_a.a src_root=.
  mkdir -p "$out"
  command -v "$cc" >/dev/null || cc=cc
  if [ -n "$rev" ]; then
    src_root="$out/src-$name-$(git rev-parse --short "$rev")"
    rm -rf "$src_root" && mkdir -p "$src_root" &&
      git archive "$rev" src include test_c | tar -x -C "$src_root" || { echo "0 passed, 1 failed"; exit 1; }
  fi
  local engine=() f
  for f in test_c/fake_dart.c src/engine.c src/sockets.c src/errors.c src/dart_post.c src/backend_io_uring.c \
           src/backend_uv.c; do engine+=("$src_root/$f"); done
  if [ ! -f "$uv_archive" ] ||
     ! "$cc" "$opt" -g -std=gnu11 -Wall -DZIG_TCP_HAVE_IO_URING=1 -D_GNU_SOURCE -I"$src_root/include" \
        -I"$src_root/src" -I"$src_root/test_c" -Itest_c "reliability/$name.c" test_c/byte_stream.c "${engine[@]}" "$uv_archive" -lpthread -ldl -lrt \
        -o "$out/$name.new.$$" || ! mv -f "$out/$name.new.$$" "$out/$name"; then
    echo "$name: build failed (needs $cc and $uv_archive from libuv1-dev)"
    echo "0 passed, 1 failed"
    exit 1
  fi
}
