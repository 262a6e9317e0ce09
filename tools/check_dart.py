#!/usr/bin/env python3
"""Static checks of zig_tcp's Dart package (no Dart SDK exists on our machines).

  1. Every .dart file of the package parses with a tree-sitter Dart grammar
     without ERROR or MISSING nodes.
  2. lib/src/bindings.dart has exactly one @Native external function per
     function of include/tcp.h, with the same symbol, arity, exact FFI types
     (native signature) and matching Dart types, isLeaf: true except where
     LEAF_EXCEPTIONS allows otherwise, and the engine's asset id.
  3. Every #define TCP_* constant and every TCP_ERRORS(X) entry of tcp.h has a `const int` twin with the same
     value in bindings.dart, and bindings.dart has no TCP_* constant tcp.h
     lacks.
  4. pubspec.yaml, hook/build.dart and the bindings agree on the package name
     and the asset id (package:<name>/<asset name>), the hook bundles a
     DynamicLoadingBundled CodeAsset, and pubspec has the needed dependencies.
  5. Every call of a tcp_* function in lib/ passes as many arguments as the
     binding declares.

Usage: check_dart.py --grammar LIB.so [--root DIR] [--self-test]
Prints one line per check and `check_dart: N passed, N failed` last; exits 1
when anything failed. --self-test also runs tools/test_check_dart.py, which
proves the checks fail on deliberately broken inputs.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import sys
from dataclasses import dataclass, field

# ---------------------------------------------------------------------------
# tree-sitter loading


def load_parser(grammar_path: str):
    """Loads the compiled Dart grammar (a shared library exporting
    tree_sitter_dart) into a py-tree-sitter Parser."""
    import tree_sitter as ts  # installed by tools/check_dart.sh

    lib = ctypes.CDLL(os.path.abspath(grammar_path))
    lib.tree_sitter_dart.restype = ctypes.c_void_p
    capsule_new = ctypes.pythonapi.PyCapsule_New
    capsule_new.restype = ctypes.py_object
    capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    language = ts.Language(capsule_new(lib.tree_sitter_dart(), b"tree_sitter.Language", None))
    return ts.Parser(language)


# ---------------------------------------------------------------------------
# results


@dataclass
class Results:
    passed: int = 0
    failed: int = 0
    failures: list = field(default_factory=list)
    quiet: bool = False

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            if not self.quiet:
                print(f"PASS {name}")
        else:
            self.failed += 1
            self.failures.append((name, detail))
            if not self.quiet:
                print(f"FAIL {name}: {detail}")
        return ok


# ---------------------------------------------------------------------------
# tcp.h

C_TO_FFI = {
    "int64_t": {"Int64"},
    "int32_t": {"Int32"},
    "uint8_t": {"Uint8"},
    "void": {"Void"},
    "void*": {"Pointer<Void>"},
    "uint8_t*": {"Pointer<Uint8>"},
    "constuint8_t*": {"Pointer<Uint8>"},
    "constchar*": {"Pointer<Utf8>", "Pointer<Char>"},
}

FFI_TO_DART = {
    "Int8": "int", "Int16": "int", "Int32": "int", "Int64": "int",
    "Uint8": "int", "Uint16": "int", "Uint32": "int", "Uint64": "int",
    "Char": "int", "Int": "int", "Long": "int", "Size": "int", "IntPtr": "int",
    "Float": "double", "Double": "double", "Bool": "bool", "Void": "void",
}

# Functions that may (or must) be non-leaf calls: tcp_init starts the engine
# once per isolate; tcp_shutdown blocks until the I/O thread has drained.
LEAF_EXCEPTIONS = {"tcp_init", "tcp_shutdown"}


@dataclass
class CFunction:
    name: str
    ret: str            # normalized C type, e.g. "constchar*"
    params: list        # normalized C types


def strip_c_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def norm_ctype(t: str) -> str:
    return re.sub(r"\s+", "", t)


def safe_int_eval(expr: str):
    """Evaluates an integer constant made of digits, + - * ( ) and spaces;
    None for anything else."""
    expr = expr.strip()
    if not expr or not re.fullmatch(r"[0-9\s+\-*()]+", expr):
        return None
    try:
        value = eval(expr, {"__builtins__": {}}, {})  # only digits/operators pass the regex
    except Exception:
        return None
    return value if isinstance(value, int) else None


def parse_header(text: str):
    """Returns ({name: CFunction}, {CONST: int}) from tcp.h."""
    code = strip_c_comments(text)
    funcs = {}
    for m in re.finditer(r"TCP_API\s+([^;{()]*?)\b(tcp_\w+)\s*\(([^)]*)\)\s*;", code, re.S):
        ret, name, plist = m.group(1), m.group(2), m.group(3).strip()
        params = []
        if plist and plist != "void":
            for p in plist.split(","):
                pm = re.fullmatch(r"\s*(.*?[\s*])(\w+)\s*", p, re.S)
                params.append(norm_ctype(pm.group(1)) if pm else "?" + p.strip())
        funcs[name] = CFunction(name, norm_ctype(ret), params)
    consts = {}
    for m in re.finditer(r"^[ \t]*#define[ \t]+(TCP_\w+)[ \t]+([^\n]*)$", code, re.M):
        value = safe_int_eval(m.group(2))
        if value is not None:
            consts[m.group(1)] = value
    # The error table: X(TCP_ERR_NAME, value, "text") entries of TCP_ERRORS(X).
    for m in re.finditer(r"\bX\((TCP_\w+),\s*(-?\d+),", code):
        consts[m.group(1)] = int(m.group(2))
    return funcs, consts


# ---------------------------------------------------------------------------
# Dart helpers


def node_text(src: bytes, node) -> str:
    return src[node.start_byte:node.end_byte].decode("utf-8")


def nows(s: str) -> str:
    return re.sub(r"\s+", "", s)


def split_top_level(s: str):
    """Splits on commas that are not inside <> or ()."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def bad_nodes(tree, src: bytes):
    """ERROR and MISSING nodes of a tree, as 'line:col kind text' strings."""
    out = []
    stack = [tree.root_node]
    while stack:
        n = stack.pop()
        if n.is_error or n.is_missing:
            kind = "MISSING" if n.is_missing else "ERROR"
            snippet = node_text(src, n)[:40].replace("\n", " ")
            out.append(f"{n.start_point[0] + 1}:{n.start_point[1] + 1} {kind} {n.type} {snippet!r}")
        elif n.has_error:
            stack.extend(n.children)
    return sorted(out)


def dart_string_value(text: str):
    m = re.fullmatch(r"r?(['\"])(.*)\1", text.strip(), re.S)
    return m.group(2) if m else None


def top_level_consts(tree, src: bytes):
    """{name: value text} for top-level `const T name = value;` declarations."""
    out = {}
    for node in tree.root_node.children:
        if node.type != "static_final_declaration_list":
            continue
        prev = node.prev_sibling
        is_const = False
        while prev is not None and prev.type in ("type_identifier", "type_arguments", "void_type",
                                                  "nullable_type", "inferred_type"):
            prev = prev.prev_sibling
        if prev is not None and prev.type == "const_builtin":
            is_const = True
        if not is_const:
            continue
        for decl in node.named_children:
            if decl.type != "static_final_declaration":
                continue
            kids = decl.named_children
            if len(kids) >= 2 and kids[0].type == "identifier":
                value = node_text(src, decl)[kids[1].start_byte - decl.start_byte:]
                out[node_text(src, kids[0])] = value.strip()
    return out


@dataclass
class Binding:
    name: str            # Dart function name
    symbol: str          # native symbol
    native_ret: str      # whitespace-free FFI type
    native_params: list
    dart_ret: str
    dart_params: list
    param_problems: list
    asset: str | None    # resolved asset id (None: not given / unresolvable)
    asset_raw: str | None
    is_leaf: bool
    is_external: bool
    line: int


def parse_native_type(t: str):
    """'Int64 Function(Int64, Pointer<Uint8>)' -> ('Int64', ['Int64', 'Pointer<Uint8>'])."""
    t = nows(t)
    m = re.fullmatch(r"(.+?)Function\((.*)\)", t)
    if not m:
        return None, None
    return m.group(1), [nows(p) for p in split_top_level(m.group(2))]


def bindings_from_tree(tree, src: bytes):
    consts = top_level_consts(tree, src)
    result = []
    kids = tree.root_node.children
    for i, node in enumerate(kids):
        if node.type != "annotation":
            continue
        name_node = node.child_by_field_name("name")
        if name_node is None or node_text(src, name_node) != "Native":
            continue
        type_args = next((c for c in node.named_children if c.type == "type_arguments"), None)
        args = next((c for c in node.named_children if c.type == "arguments"), None)
        native_ret, native_params = (None, None)
        if type_args is not None:
            native_ret, native_params = parse_native_type(node_text(src, type_args)[1:-1])
        named = {}
        if args is not None:
            for a in args.named_children:
                if a.type == "named_argument":
                    label = a.named_children[0]
                    value = a.named_children[1] if len(a.named_children) > 1 else None
                    named[node_text(src, label).rstrip(":").strip()] = (
                        node_text(src, value) if value is not None else "")
        # The declaration: skip other annotations/comments, note `external`.
        j, is_external, sig = i + 1, False, None
        while j < len(kids):
            k = kids[j]
            if k.type == "external":
                is_external = True
            elif k.type in ("annotation", "comment", "documentation_comment"):
                pass
            elif k.type == "function_signature":
                sig = k
                break
            else:
                break
            j += 1
        if sig is None:
            result.append(Binding("?", "?", native_ret, native_params, "?", [],
                                  ["@Native is not followed by a top-level function"],
                                  None, None, False, False, node.start_point[0] + 1))
            continue
        fname_node = sig.child_by_field_name("name")
        fname = node_text(src, fname_node)
        dart_ret = nows(src[sig.start_byte:fname_node.start_byte].decode())
        dart_params, problems = [], []
        plist = next((c for c in sig.named_children if c.type == "formal_parameter_list"), None)
        if plist is not None:
            for p in plist.named_children:
                if p.type == "formal_parameter":
                    pname = p.child_by_field_name("name")
                    end = pname.start_byte if pname is not None else p.end_byte
                    dart_params.append(nows(src[p.start_byte:end].decode()))
                elif p.type in ("comment", "documentation_comment"):
                    continue
                else:
                    problems.append(f"unsupported parameter kind {p.type}")
        symbol = fname
        if "symbol" in named:
            symbol = dart_string_value(named["symbol"]) or "?"
        asset_raw = named.get("assetId")
        asset = None
        if asset_raw is not None:
            asset = dart_string_value(asset_raw)
            if asset is None and asset_raw in consts:
                asset = dart_string_value(consts[asset_raw])
        is_leaf = named.get("isLeaf", "false").strip() == "true"
        result.append(Binding(fname, symbol, native_ret, native_params, dart_ret, dart_params,
                              problems, asset, asset_raw, is_leaf, is_external,
                              sig.start_point[0] + 1))
    return result, consts


def calls_in_tree(tree, src: bytes):
    """(name, argument count, line) for every `tcp_xxx(...)` call."""
    out = []
    stack = [tree.root_node]
    while stack:
        n = stack.pop()
        stack.extend(n.children)
        if n.type != "identifier":
            continue
        name = node_text(src, n)
        if not name.startswith("tcp_"):
            continue
        nxt = n.next_named_sibling
        if nxt is None or nxt.type != "selector":
            continue
        part = nxt.named_children[0] if nxt.named_children else None
        if part is None or part.type != "argument_part":
            continue
        arguments = next((c for c in part.named_children if c.type == "arguments"), None)
        if arguments is None:
            continue
        count = sum(1 for c in arguments.named_children if c.type in ("argument", "named_argument"))
        out.append((name, count, n.start_point[0] + 1))
    return out


# ---------------------------------------------------------------------------
# pubspec (our own, simple YAML: top-level keys and one nested level)


def parse_pubspec(text: str):
    top, current = {}, None
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        key, _, value = line.strip().partition(":")
        value = value.strip().strip("'\"")
        if indent == 0:
            current = key
            top[key] = value if value else {}
        elif current is not None and isinstance(top.get(current), dict) and indent <= 2:
            top[current][key] = value
    return top


def version_tuple(v: str):
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


# ---------------------------------------------------------------------------
# the checks


DART_DIRS = ("lib", "hook", "test", "example", "tool", "bin")
SKIP_DIRS = {".dart_tool", ".tools", "build", "zig-out", ".git", "node_modules"}


def dart_files(root: str):
    files = []
    for d in DART_DIRS:
        base = os.path.join(root, d)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(x for x in dirnames if x not in SKIP_DIRS)
            files.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".dart"))
    return files


def run_checks(root: str, parser, res: Results):
    rel = lambda p: os.path.relpath(p, root)  # noqa: E731
    trees = {}

    # 1. parse
    files = dart_files(root)
    res.check("dart files found", len(files) > 0, "no .dart files under " + ", ".join(DART_DIRS))
    for path in files:
        src = open(path, "rb").read()
        tree = parser.parse(src)
        trees[path] = (tree, src)
        bad = bad_nodes(tree, src)
        res.check(f"parse {rel(path)}", not bad, "; ".join(bad[:5]))

    # 2. bindings vs tcp.h
    header_path = os.path.join(root, "include", "tcp.h")
    bindings_path = os.path.join(root, "lib", "src", "bindings.dart")
    if not res.check("include/tcp.h exists", os.path.isfile(header_path), header_path):
        return
    if not res.check("lib/src/bindings.dart exists", os.path.isfile(bindings_path), bindings_path):
        return
    cfuncs, cconsts = parse_header(open(header_path, encoding="utf-8").read())
    res.check("tcp.h declares functions", len(cfuncs) > 0, "no TCP_API functions found")
    if bindings_path not in trees:
        src = open(bindings_path, "rb").read()
        trees[bindings_path] = (parser.parse(src), src)
    btree, bsrc = trees[bindings_path]
    bindings, dconsts = bindings_from_tree(btree, bsrc)
    by_symbol = {}
    for b in bindings:
        by_symbol.setdefault(b.symbol, []).append(b)

    asset_const = dart_string_value(dconsts.get("zigTcpAssetId", "")) if "zigTcpAssetId" in dconsts else None
    res.check("bindings define zigTcpAssetId", asset_const is not None,
              "const String zigTcpAssetId = '...'; missing")

    for name, cf in sorted(cfuncs.items()):
        found = by_symbol.get(name, [])
        problems = []
        if not found:
            res.check(f"binding {name}", False, "no @Native binding for this tcp.h function")
            continue
        if len(found) > 1:
            problems.append(f"{len(found)} bindings for one symbol (lines {[b.line for b in found]})")
        b = found[0]
        problems.extend(b.param_problems)
        if b.name != name:
            problems.append(f"Dart name {b.name} differs from the C name")
        if not b.is_external:
            problems.append("not declared external")
        if b.native_ret is None:
            problems.append("@Native has no parsable function type")
        else:
            want_ret = C_TO_FFI.get(cf.ret)
            if want_ret is None:
                problems.append(f"no FFI mapping for C return type {cf.ret}")
            elif b.native_ret not in want_ret:
                problems.append(f"native return {b.native_ret}, tcp.h {cf.ret} wants {'/'.join(sorted(want_ret))}")
            if len(b.native_params) != len(cf.params):
                problems.append(f"native arity {len(b.native_params)}, tcp.h has {len(cf.params)}")
            else:
                for k, (nt, ct) in enumerate(zip(b.native_params, cf.params)):
                    want = C_TO_FFI.get(ct)
                    if want is None:
                        problems.append(f"param {k + 1}: no FFI mapping for C type {ct}")
                    elif nt not in want:
                        problems.append(f"param {k + 1}: native {nt}, tcp.h {ct} wants {'/'.join(sorted(want))}")
            # Dart side must match the native side.
            want_dart_ret = dart_type_for(b.native_ret)
            if b.dart_ret != want_dart_ret:
                problems.append(f"Dart return {b.dart_ret}, native {b.native_ret} wants {want_dart_ret}")
            if len(b.dart_params) != len(b.native_params):
                problems.append(f"Dart arity {len(b.dart_params)}, native arity {len(b.native_params)}")
            else:
                for k, (dt, nt) in enumerate(zip(b.dart_params, b.native_params)):
                    want = dart_type_for(nt)
                    if dt != want:
                        problems.append(f"param {k + 1}: Dart {dt}, native {nt} wants {want}")
        if name in LEAF_EXCEPTIONS:
            pass
        elif not b.is_leaf:
            problems.append("isLeaf: true missing (tcp.h allows every call as a leaf call)")
        if b.asset_raw is None:
            problems.append("no assetId")
        elif b.asset is None:
            problems.append(f"assetId {b.asset_raw} is not a string or a known const")
        elif asset_const is not None and b.asset != asset_const:
            problems.append(f"assetId {b.asset!r} differs from zigTcpAssetId {asset_const!r}")
        res.check(f"binding {name}", not problems, "; ".join(problems))

    extra = sorted({b.symbol for b in bindings} - set(cfuncs))
    res.check("no bindings beyond tcp.h", not extra, "not in tcp.h: " + ", ".join(extra))

    # 3. constants
    for cname, cval in sorted(cconsts.items()):
        text = dconsts.get(cname)
        dval = safe_int_eval(text) if text is not None else None
        if text is not None and dval is None:
            m = re.fullmatch(r"-\s*(\d+)", text or "")
            dval = -int(m.group(1)) if m else None
        res.check(f"constant {cname}", dval == cval,
                  "missing in bindings.dart" if text is None else f"Dart {text} = {dval}, tcp.h {cval}")
    extra_consts = sorted(n for n in dconsts if n.startswith("TCP_") and n not in cconsts)
    res.check("no TCP_ constants beyond tcp.h", not extra_consts, ", ".join(extra_consts))

    # 5. call-site arity in lib/
    arity = {b.name: len(b.dart_params) for b in bindings}
    bad_calls = []
    for path, (tree, src) in trees.items():
        if not os.path.relpath(path, root).startswith("lib" + os.sep):
            continue
        for cname, count, line in calls_in_tree(tree, src):
            if cname in arity and arity[cname] != count:
                bad_calls.append(f"{rel(path)}:{line} {cname} with {count} args, binding takes {arity[cname]}")
            elif cname not in arity and cname in cfuncs:
                bad_calls.append(f"{rel(path)}:{line} {cname} has no binding")
    res.check("tcp_* call sites pass the declared number of arguments", not bad_calls, "; ".join(bad_calls[:5]))

    # 4. pubspec + hook
    pub_path = os.path.join(root, "pubspec.yaml")
    if not res.check("pubspec.yaml exists", os.path.isfile(pub_path), pub_path):
        return
    pub = parse_pubspec(open(pub_path, encoding="utf-8").read())
    pkg = pub.get("name") if isinstance(pub.get("name"), str) else None
    res.check("pubspec name is zig_tcp", pkg == "zig_tcp", f"name: {pkg!r}")
    env = pub.get("environment") if isinstance(pub.get("environment"), dict) else {}
    sdk = env.get("sdk", "")
    low = re.search(r">=\s*([\d.]+)", sdk) or re.search(r"\^\s*([\d.]+)", sdk)
    res.check("pubspec SDK lower bound >= 3.10.0 (stable build hooks)",
              bool(low) and version_tuple(low.group(1)) >= (3, 10, 0), f"sdk: {sdk!r}")
    deps = pub.get("dependencies") if isinstance(pub.get("dependencies"), dict) else {}
    dev = pub.get("dev_dependencies") if isinstance(pub.get("dev_dependencies"), dict) else {}
    missing = [d for d in ("hooks", "code_assets", "ffi") if d not in deps]
    res.check("pubspec dependencies hooks, code_assets, ffi", not missing, "missing: " + ", ".join(missing))
    missing = [d for d in ("test", "lints") if d not in dev]
    res.check("pubspec dev_dependencies test, lints", not missing, "missing: " + ", ".join(missing))

    hook_path = os.path.join(root, "hook", "build.dart")
    if not res.check("hook/build.dart exists", os.path.isfile(hook_path), hook_path):
        return
    hook_src = strip_c_comments(open(hook_path, encoding="utf-8").read())  # Dart comments are C-like
    m = re.search(r"CodeAsset\((.*?)\)\s*,?\s*\)", hook_src, re.S) or re.search(r"CodeAsset\((.*)", hook_src, re.S)
    body = m.group(1) if m else ""
    pm = re.search(r"\bpackage\s*:\s*([^,\n]+)", body)
    nm = re.search(r"\bname\s*:\s*([^,\n]+)", body)
    package_expr = pm.group(1).strip() if pm else None
    name_value = dart_string_value(nm.group(1).strip()) if nm else None
    res.check("hook registers a CodeAsset", m is not None, "no CodeAsset( in hook/build.dart")
    if package_expr is not None and dart_string_value(package_expr) is not None:
        hook_pkg = dart_string_value(package_expr)
    elif package_expr == "input.packageName":
        hook_pkg = pkg
    else:
        hook_pkg = None
    hook_id = f"package:{hook_pkg}/{name_value}" if hook_pkg and name_value else None
    res.check("hook CodeAsset id equals bindings zigTcpAssetId", hook_id is not None and hook_id == asset_const,
              f"hook id {hook_id!r} (package: {package_expr!r}, name: {name_value!r}), bindings {asset_const!r}")
    res.check("asset id names the bindings library", asset_const == f"package:{pkg}/src/bindings.dart",
              f"{asset_const!r} vs package:{pkg}/src/bindings.dart")
    res.check("hook bundles a dynamic library", "DynamicLoadingBundled()" in body,
              "linkMode: DynamicLoadingBundled() missing")


def dart_type_for(ffi_type: str) -> str:
    if ffi_type.startswith("Pointer<"):
        return ffi_type
    return FFI_TO_DART.get(ffi_type, "?" + ffi_type)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grammar", required=True, help="compiled tree-sitter Dart grammar (.so)")
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--self-test", action="store_true", help="also prove the checks catch broken inputs")
    args = ap.parse_args(argv)
    parser = load_parser(args.grammar)
    res = Results()
    run_checks(args.root, parser, res)
    if args.self_test:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import test_check_dart  # noqa: E402

        test_check_dart.run_self_tests(args.root, parser, res)
    print(f"check_dart: {res.passed} passed, {res.failed} failed")
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
