#!/usr/bin/env bash
# Static checks of the Dart package (there is no Dart SDK on our machines):
# tree-sitter parse of every .dart file, bindings vs include/tcp.h, constants,
# pubspec/hook/asset-id agreement, plus the checker's own self-tests.
# Installs what it needs into .tools/ (versions pinned in tools/versions.env):
#   - PyPI tree-sitter (Python bindings) in a venv,
#   - the npm Dart grammar (parser.c + scanner.c), compiled with cc, or with
#     `./zigw cc` when no C compiler is installed.
# Last line: `check_dart: N passed, N failed`; exit status 1 on any failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tools/versions.env
source "$root/tools/versions.env"
grammar_pkg="${TREE_SITTER_DART_GRAMMAR_NPM:-$TREE_SITTER_DART_NPM}"

venv="$root/.tools/check-dart-venv-$TREE_SITTER_PY_VERSION"
if ! "$venv/bin/python" -c "import tree_sitter" >/dev/null 2>&1; then
  echo "check_dart: installing tree-sitter==$TREE_SITTER_PY_VERSION into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "tree-sitter==$TREE_SITTER_PY_VERSION" >&2
fi

gdir="$root/.tools/dart-grammar-$(echo "$grammar_pkg" | tr -c 'A-Za-z0-9.\n' '_')"
so="$gdir/tree_sitter_dart.so"
if [ ! -f "$so" ]; then
  echo "check_dart: fetching $grammar_pkg from npm and compiling it" >&2
  rm -rf "$gdir" && mkdir -p "$gdir"
  (cd "$gdir" && npm pack --silent "$grammar_pkg" >/dev/null && tar xzf ./*.tgz)
  src="$gdir/package/src"
  [ -f "$src/parser.c" ] || { echo "check_dart: no parser.c in $grammar_pkg" >&2; exit 1; }
  files=("$src/parser.c")
  [ -f "$src/scanner.c" ] && files+=("$src/scanner.c")
  if command -v cc >/dev/null 2>&1; then
    cc -O1 -shared -fPIC -I"$src" "${files[@]}" -o "$so.tmp"
  else
    "$root/zigw" cc -O1 -shared -fPIC -I"$src" "${files[@]}" -o "$so.tmp"
  fi
  mv "$so.tmp" "$so"
fi

exec "$venv/bin/python" "$root/tools/check_dart.py" --grammar "$so" --root "$root" --self-test "$@"
