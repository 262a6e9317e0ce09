#!/usr/bin/env python3
"""Tests of tools/check_dart.py itself: it must pass on an untouched copy of
the package and FAIL on deliberately broken copies (wrong type, missing
function, wrong arity, parse error, ...). Run through
`tools/check_dart.sh` (check_dart.py --self-test), or alone:

  test_check_dart.py --grammar LIB.so [--root DIR]
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_dart  # noqa: E402

BINDINGS = "lib/src/bindings.dart"
COPIED = ("include/tcp.h", BINDINGS, "hook/build.dart", "pubspec.yaml", "lib/zig_tcp.dart")


def sub_once(pattern: str, repl: str, flags=re.S):
    """A mutation: re.sub that must match exactly... at least once."""
    def apply(text: str) -> str:
        new, n = re.subn(pattern, repl, text, count=1, flags=flags)
        if n != 1:
            raise AssertionError(f"mutation pattern did not match: {pattern!r}")
        return new
    return apply


# (name, file, mutation, name prefix of a check that must fail)
MUTATIONS = [
    ("wrong native param type",
     BINDINGS, sub_once(r"Int32 Function\(Int64, Int64\)>\(\s*symbol: 'tcp_accept'",
                        "Int32 Function(Int32, Int64)>(symbol: 'tcp_accept'"),
     "binding tcp_accept"),
    ("wrong native return type",
     BINDINGS, sub_once(r"@Native<Int64 Function\(Int64, Pointer<Uint8>",
                        "@Native<Int32 Function(Int64, Pointer<Uint8>"),
     "binding tcp_listen"),
    ("wrong pointer type",
     BINDINGS, sub_once(r"Int32 Function\(Int64, Int64, Pointer<Uint8>, Int64\)",
                        "Int32 Function(Int64, Int64, Pointer<Int8>, Int64)"),
     "binding tcp_write"),
    ("Dart type disagrees with native type",
     BINDINGS, sub_once(r"external int tcp_accept\(int listener",
                        "external double tcp_accept(int listener"),
     "binding tcp_accept"),
    ("missing function",
     BINDINGS, sub_once(r"@Native<Int32 Function\(Int64\)>\(\s*symbol: 'tcp_get_no_delay'.*?;\n", ""),
     "binding tcp_get_no_delay"),
    ("wrong arity (native and Dart agree, tcp.h differs)",
     BINDINGS, lambda t: sub_once(r"external int tcp_shutdown_write\(int connection, int request_id\)",
                                  "external int tcp_shutdown_write(int connection)")(
         sub_once(r"Int32 Function\(Int64, Int64\)>\(\s*symbol: 'tcp_shutdown_write'",
                  "Int32 Function(Int64)>(symbol: 'tcp_shutdown_write'")(t)),
     "binding tcp_shutdown_write"),
    ("Dart arity differs from native arity",
     BINDINGS, sub_once(r"external int tcp_close\(int handle, int request_id\)",
                        "external int tcp_close(int handle, int request_id, int extra)"),
     "binding tcp_close"),
    ("parse error",
     BINDINGS, sub_once(r"\Z", "\nvoid broken( {\n"),
     "parse lib/src/bindings.dart"),
    ("parse error (missing token)",
     "lib/zig_tcp.dart", sub_once(r"\Z", "\nfinal int x = (1 + 2;\n"),
     "parse lib/zig_tcp.dart"),
    ("isLeaf dropped",
     BINDINGS, sub_once(r"symbol: 'tcp_read', assetId: zigTcpAssetId, isLeaf: true",
                        "symbol: 'tcp_read', assetId: zigTcpAssetId"),
     "binding tcp_read"),
    ("wrong symbol name",
     BINDINGS, sub_once(r"symbol: 'tcp_remote_port'", "symbol: 'tcp_remote_prot'"),
     "binding tcp_remote_port"),
    ("binding that tcp.h lacks",
     BINDINGS, sub_once(r"\Z", "\n@Native<Int32 Function()>(symbol: 'tcp_bogus', assetId: zigTcpAssetId, "
                               "isLeaf: true)\nexternal int tcp_bogus();\n"),
     "no bindings beyond tcp.h"),
    ("wrong asset id on one binding",
     BINDINGS, sub_once(r"symbol: 'tcp_local_port', assetId: zigTcpAssetId",
                        "symbol: 'tcp_local_port', assetId: 'package:zig_tcp/other.dart'"),
     "binding tcp_local_port"),
    ("wrong error constant",
     BINDINGS, sub_once(r"const int TCP_ERR_CLOSED = -3;", "const int TCP_ERR_CLOSED = -4;"),
     "constant TCP_ERR_CLOSED"),
    ("missing error constant",
     BINDINGS, sub_once(r"const int TCP_ERR_TIMED_OUT = -25;\n", ""),
     "constant TCP_ERR_TIMED_OUT"),
    ("hook asset name differs",
     "hook/build.dart", sub_once(r"name: 'src/bindings.dart'", "name: 'src/engine.dart'"),
     "hook CodeAsset id equals bindings zigTcpAssetId"),
    ("pubspec package name differs",
     "pubspec.yaml", sub_once(r"^name: zig_tcp$", "name: zig_sockets", re.M),
     "pubspec name is zig_tcp"),
    ("tcp.h gains a function",
     "include/tcp.h", sub_once(r"#ifdef __cplusplus\n}", "TCP_API int32_t tcp_new_thing(int64_t h);\n\n#ifdef __cplusplus\n}"),
     "binding tcp_new_thing"),
    ("tcp.h changes a parameter type",
     "include/tcp.h", sub_once(r"int32_t tcp_read\(int64_t connection, int64_t request_id, int64_t bytes_max\)",
                               "int32_t tcp_read(int64_t connection, int64_t request_id, int32_t bytes_max)"),
     "binding tcp_read"),
]


def make_copy(root: str, dest: str):
    for relpath in COPIED:
        src = os.path.join(root, relpath)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, relpath)), exist_ok=True)
            shutil.copyfile(src, os.path.join(dest, relpath))


def run_one(root: str, parser, mutate_file=None, mutation=None):
    with tempfile.TemporaryDirectory(prefix="check_dart_selftest_") as tmp:
        make_copy(root, tmp)
        if mutate_file is not None:
            path = os.path.join(tmp, mutate_file)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            with open(path, "w", encoding="utf-8") as f:
                f.write(mutation(text))
        inner = check_dart.Results(quiet=True)
        check_dart.run_checks(tmp, parser, inner)
        return inner


def run_self_tests(root: str, parser, res: "check_dart.Results"):
    base = run_one(root, parser)
    res.check("self-test: untouched copy passes every check", base.failed == 0 and base.passed > 0,
              f"{base.failed} failed: {base.failures[:3]}")
    for name, relpath, mutation, must_fail in MUTATIONS:
        try:
            inner = run_one(root, parser, relpath, mutation)
        except AssertionError as e:
            res.check(f"self-test: {name}", False, str(e))
            continue
        hit = [n for n, _ in inner.failures if n.startswith(must_fail)]
        res.check(f"self-test: {name} is caught", bool(hit),
                  f"expected a failing check '{must_fail}', failures were {[n for n, _ in inner.failures]}")


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--grammar", required=True)
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = ap.parse_args(argv)
    parser = check_dart.load_parser(args.grammar)
    res = check_dart.Results()
    run_self_tests(args.root, parser, res)
    print(f"test_check_dart: {res.passed} passed, {res.failed} failed")
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
