//! zig_tcp build: the engine as a shared library (what Dart loads) and a
//! static one, the backend picked by target OS; plus the C test suite, the
//! demo and the benchmark tools; on Linux also the checked builds (sanitizers,
//! fuzzer, reliability tools).
//!
//!   ./zigw build                                  native library + tools
//!   ./zigw build -Dtarget=x86_64-windows-gnu      DLL + suite .exe (IOCP)
//!   ./zigw build -Dtarget=aarch64-macos           libuv backend, compile only
//!   ./zigw build sanitize-address --prefix build  build/san-address/: engine + suite, ASan+UBSan+LSan
//!   ./zigw build sanitize-thread --prefix build   build/san-thread/: the same with TSan
//!   ./zigw build sim-address --prefix build       build/san-address/sim_test: the simulation test, ASan+UBSan+LSan
//!   ./zigw build fuzz --prefix build              build/fuzz/fuzz_ops (libFuzzer+ASan+UBSan)
//!   ./zigw build faults --prefix build            build/reliability/faults (also: soak,
//!                                                 repro_restart_shutdown, nfq_delay)
//!
//! One list of sources. The engine's sources are named once, below: `core_sources`
//! (every backend) and one list per backend; the suite's in `suite_sources`;
//! libuv's in tools/libuv-sources.txt. Everything that compiles the engine
//! takes them from here: the Zig build of the libraries, and the checked
//! builds, which tools/sanitize.sh, tools/fuzz.sh and tools/reliability-build.sh
//! run as `./zigw build STEP` instead of compiler lines of their own.
//!
//! The checked builds need AddressSanitizer, LeakSanitizer and libFuzzer,
//! which Zig 0.15's own C compiler does not provide (it has only UBSan and
//! TSan), so they run an outside clang (-Dchecked-cc, default Debian's
//! clang-14 with libclang-rt-14-dev) through Run steps: one compile per source
//! file (clang's dependency file tells Zig's cache which headers it read, so
//! an unchanged file is not compiled again) and one link. -Dengine-root=DIR
//! takes src/ and include/ from DIR instead (the scripts' *_SRC_REV: the
//! engine of another commit, extracted there, with this tree's test programs).
const std = @import("std");
const builtin = @import("builtin");

/// The core, shared by every backend (see docs/architecture.md).
const core_sources = [_][]const u8{
    "src/api.c",
    "src/engine.c",
    "src/handles.c",
    "src/ops.c",
    "src/sock.c",
    "src/stream.c",
    "src/shared.c",
    "src/loop.c",
    "src/deadlines.c",
    "src/dart_post.c",
    "src/errors.c",
    "src/sockets.c",
    "src/platform.c",
};
/// Each backend's own files (Linux has io_uring and libuv, the run-time fallback).
const io_uring_sources = [_][]const u8{ "src/backend_io_uring.c", "src/io_uring_ring.c", "src/io_uring_bufs.c", "src/io_uring_read.c" };
const uv_sources = [_][]const u8{"src/backend_uv.c"};
const iocp_sources = [_][]const u8{ "src/backend_iocp.c", "src/iocp_read.c", "src/iocp_connect.c" };

/// The C suite (tcp_suite): its main, the harness and the tests by topic.
const suite_sources = [_][]const u8{
    "test_c/suite.c",
    "test_c/runner.c",
    "test_c/tracker.c",
    "test_c/tracked_calls.c",
    "test_c/raw_socket.c",
    "test_c/endpoint.c",
    "test_c/hanging_destination.c",
    "test_c/fake_dart.c",
    "test_c/byte_stream.c",
    "test_c/test_lifecycle.c",
    "test_c/test_data.c",
    "test_c/test_close_cancel.c",
    "test_c/test_errors.c",
    "test_c/test_options.c",
    "test_c/test_isolates.c",
    "test_c/test_streams.c",
    "test_c/test_backend_faults.c",
    "test_c/test_portability.c",
    "test_c/test_iocp.c",
    "test_c/test_unix.c",
};

/// The operation-sequence fuzzer (fuzz/fuzz.h says which part does what).
const fuzz_sources = [_][]const u8{
    "fuzz/fuzz_ops.c",
    "fuzz/fuzz_model.c",
    "fuzz/fuzz_calls.c",
    "fuzz/fuzz_stream.c",
};

/// The simulation backend (compiled only into sim_test, never into a library)
/// and the simulation test: its main, one seed's program and model, and the
/// harness it shares with the suite.
const sim_sources = [_][]const u8{ "src/backend_sim.c", "src/backend_sim_control.c", "src/backend_sim_report.c" };
const sim_test_sources = [_][]const u8{
    "test_c/sim_test.c",
    "test_c/sim_program.c",
    "test_c/sim_model.c",
    "test_c/sim_no_uv.c",
    "test_c/runner.c",
    "test_c/tracker.c",
    "test_c/tracked_calls.c",
    "test_c/fake_dart.c",
    "test_c/byte_stream.c",
};

const c_flags = [_][]const u8{
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Werror=implicit-function-declaration",
    "-fno-strict-aliasing",
    "-D_GNU_SOURCE",
};

const Backend = enum { io_uring_with_uv, uv, iocp };

fn backendFor(os: std.Target.Os.Tag) Backend {
    return switch (os) {
        .windows => .iocp,
        .linux => .io_uring_with_uv,
        else => .uv,
    };
}

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{ .preferred_optimize_mode = .ReleaseSafe });
    const os = target.result.os.tag;
    const backend = backendFor(os);
    const tsan = b.option(bool, "tsan", "Build everything with ThreadSanitizer") orelse false;
    const uv = if (backend == .iocp) null else libuvSource(b, os);

    const lib_shared = addEngine(b, .dynamic, target, optimize, backend, tsan, uv);
    const lib_static = addEngine(b, .static, target, optimize, backend, tsan, uv);
    b.installArtifact(lib_shared);
    b.installArtifact(lib_static);
    // `zig build lib`: only the engine libraries (what the Dart build hook needs).
    const lib_step = b.step("lib", "Build only the engine libraries");
    lib_step.dependOn(&b.addInstallArtifact(lib_shared, .{}).step);
    lib_step.dependOn(&b.addInstallArtifact(lib_static, .{}).step);

    // The checked builds compile for this Linux machine with an outside clang.
    if (os == .linux and builtin.os.tag == .linux) addCheckedBuilds(b, uv);

    // Everything below runs on the engine; macOS/BSD cross builds stop here.
    if (os != .linux and os != .windows) return;

    // The backend-agnostic C suite, linked to the shipped shared library.
    const suite = addTool(b, "tcp_suite", &suite_sources, target, optimize, tsan, lib_shared);
    b.installArtifact(suite);
    // `zig build suite`: only the shared library and the suite (the Wine and arm64 runs need no more).
    const suite_step = b.step("suite", "Build only the shared engine library and the C suite");
    suite_step.dependOn(&b.addInstallArtifact(lib_shared, .{}).step);
    suite_step.dependOn(&b.addInstallArtifact(suite, .{}).step);

    if (os == .linux) {
        // Run-time fallback from io_uring to libuv (seccomp-blocked io_uring).
        const fallback = addTool(b, "tcp_fallback_test", &.{ "test_c/fallback_test.c", "test_c/fake_dart.c" }, target, optimize, tsan, lib_shared);
        b.installArtifact(fallback);
        b.installArtifact(addTool(b, "stress_cancel_backlog", &.{ "test_c/stress_cancel_backlog.c", "test_c/fake_dart.c" }, target, optimize, tsan, lib_shared));
        // The deterministic simulation test (docs/testing.md).
        b.installArtifact(addSimTest(b, target, optimize, tsan));
    }

    const demo = addTool(b, "echo_demo", &.{ "demo/echo_demo.c", "test_c/fake_dart.c" }, target, optimize, tsan, lib_shared);
    b.installArtifact(demo);

    const run_suite = b.addRunArtifact(suite);
    run_suite.step.dependOn(b.getInstallStep());
    const test_step = b.step("test", "Run the C suite against the default backend");
    test_step.dependOn(&run_suite.step);

    const run_demo = b.addRunArtifact(demo);
    run_demo.step.dependOn(b.getInstallStep());
    const demo_step = b.step("demo", "Run the echo demo");
    demo_step.dependOn(&run_demo.step);
}

fn addEngine(
    b: *std.Build,
    linkage: std.builtin.LinkMode,
    target: std.Build.ResolvedTarget,
    optimize: std.builtin.OptimizeMode,
    backend: Backend,
    tsan: bool,
    uv: ?Libuv,
) *std.Build.Step.Compile {
    const mod = b.createModule(.{
        .target = target,
        .optimize = optimize,
        .link_libc = true,
        .sanitize_thread = tsan,
        .pic = true,
    });
    mod.addIncludePath(b.path("include"));
    mod.addIncludePath(b.path("src"));
    // Invariants (src/zt_assert.h) execute in every mode but ReleaseFast.
    mod.addCMacro("ZIG_TCP_ASSERTS", if (optimize == .ReleaseFast) "0" else "1");
    mod.addCSourceFiles(.{ .files = &core_sources, .flags = &c_flags });
    switch (backend) {
        .iocp => {
            mod.addCSourceFiles(.{ .files = &iocp_sources, .flags = &c_flags });
            mod.linkSystemLibrary("ws2_32", .{});
            mod.linkSystemLibrary("mswsock", .{});
        },
        .io_uring_with_uv => {
            mod.addCMacro("ZIG_TCP_HAVE_IO_URING", "1");
            mod.addCSourceFiles(.{ .files = &(io_uring_sources ++ uv_sources), .flags = &c_flags });
            mod.linkSystemLibrary("pthread", .{});
            mod.linkSystemLibrary("dl", .{});
            mod.linkSystemLibrary("rt", .{});
        },
        .uv => {
            mod.addCSourceFiles(.{ .files = &uv_sources, .flags = &c_flags });
        },
    }
    if (uv) |libuv| {
        if (libuv.vendored) |v| {
            // libuv compiled into the engine, so users need no libuv at run time.
            mod.addIncludePath(b.path(b.fmt("{s}/include", .{v.dir})));
            mod.addIncludePath(b.path(b.fmt("{s}/src", .{v.dir})));
            mod.addCSourceFiles(.{ .root = b.path(v.dir), .files = v.files, .flags = v.flags });
        } else {
            mod.linkSystemLibrary("uv", .{});
        }
    }
    // On Windows a DLL's import library is zig_tcp.lib too: keep them apart.
    const is_windows_static = linkage == .static and target.result.os.tag == .windows;
    const lib = b.addLibrary(.{
        .linkage = linkage,
        .name = if (is_windows_static) "zig_tcp_static" else "zig_tcp",
        .root_module = mod,
    });
    if (linkage == .dynamic and target.result.os.tag == .linux) {
        lib.setVersionScript(b.path("src/exports.map"));
    }
    return lib;
}

fn addTool(
    b: *std.Build,
    name: []const u8,
    files: []const []const u8,
    target: std.Build.ResolvedTarget,
    optimize: std.builtin.OptimizeMode,
    tsan: bool,
    lib: *std.Build.Step.Compile,
) *std.Build.Step.Compile {
    const mod = b.createModule(.{
        .target = target,
        .optimize = optimize,
        .link_libc = true,
        .sanitize_thread = tsan,
    });
    mod.addIncludePath(b.path("include"));
    mod.addIncludePath(b.path("test_c"));
    mod.addIncludePath(b.path("src"));
    mod.addCSourceFiles(.{ .files = files, .flags = &c_flags });
    mod.linkLibrary(lib);
    if (target.result.os.tag == .windows) {
        mod.linkSystemLibrary("ws2_32", .{});
    } else {
        mod.linkSystemLibrary("pthread", .{});
    }
    return b.addExecutable(.{ .name = name, .root_module = mod });
}

/// sim_test: the core and the simulation backend compiled into the program
/// itself (-DZIG_TCP_HAVE_SIM), with invariants on in every mode. A Debug
/// build makes it ReleaseSafe: seeds per second are what it is for (about 3x
/// more than Debug), and a failing seed replays under the sim-address build.
fn addSimTest(
    b: *std.Build,
    target: std.Build.ResolvedTarget,
    optimize: std.builtin.OptimizeMode,
    tsan: bool,
) *std.Build.Step.Compile {
    const mod = b.createModule(.{
        .target = target,
        .optimize = if (optimize == .Debug) .ReleaseSafe else optimize,
        .link_libc = true,
        .sanitize_thread = tsan,
    });
    mod.addIncludePath(b.path("include"));
    mod.addIncludePath(b.path("src"));
    mod.addIncludePath(b.path("test_c"));
    mod.addCMacro("ZIG_TCP_HAVE_SIM", "1");
    mod.addCMacro("ZIG_TCP_ASSERTS", "1");
    mod.addCSourceFiles(.{ .files = &(core_sources ++ sim_sources ++ sim_test_sources), .flags = &c_flags });
    mod.linkSystemLibrary("pthread", .{});
    return b.addExecutable(.{ .name = "sim_test", .root_module = mod });
}

const Libuv = struct {
    /// null: link the system's libuv (a macOS/BSD build without the source).
    vendored: ?struct { dir: []const u8, files: []const []const u8, flags: []const []const u8 },
};

/// libuv for the engine: compiled from Debian's libuv source (fetched into
/// .tools/libuv-src by tools/fetch-libuv.sh, version pinned in
/// tools/versions.env) when it is there -- always on Linux, where the build
/// fetches it -- else the system's libuv (macOS/BSD users: Homebrew, pkg).
fn libuvSource(b: *std.Build, os: std.Target.Os.Tag) Libuv {
    const dir = b.option([]const u8, "uv-source", "libuv source folder (default .tools/libuv-src)") orelse ".tools/libuv-src";
    const group: []const u8 = switch (os) {
        .linux => "linux",
        .macos, .ios => "darwin",
        .freebsd => "freebsd",
        else => "",
    };
    const have_source = blk: {
        b.build_root.handle.access(b.fmt("{s}/include/uv.h", .{dir}), .{}) catch {
            if (os == .linux and @import("builtin").os.tag == .linux) {
                // Needs Debian's apt; elsewhere fall back to the system libuv.
                var code: u8 = 0;
                _ = b.runAllowFail(&.{ "bash", b.pathFromRoot("tools/fetch-libuv.sh") }, &code, .Inherit) catch {
                    std.log.warn("could not fetch libuv's source (tools/fetch-libuv.sh); linking the system libuv", .{});
                    break :blk false;
                };
                break :blk true;
            }
            break :blk false;
        };
        break :blk true;
    };
    if (!have_source or group.len == 0) return .{ .vendored = null };

    const list = b.build_root.handle.readFileAlloc(b.allocator, "tools/libuv-sources.txt", 1 << 20) catch
        @panic("tools/libuv-sources.txt missing");
    var files: std.ArrayList([]const u8) = .empty;
    var lines = std.mem.tokenizeScalar(u8, list, '\n');
    while (lines.next()) |line| {
        if (line.len == 0 or line[0] == '#') continue;
        var fields = std.mem.tokenizeScalar(u8, line, ' ');
        const line_group = fields.next() orelse continue;
        const path = fields.next() orelse continue;
        if (std.mem.eql(u8, line_group, "common") or std.mem.eql(u8, line_group, "unix") or
            std.mem.eql(u8, line_group, group))
            files.append(b.allocator, path) catch @panic("OOM");
    }
    const flags: []const []const u8 = switch (os) {
        .linux => &.{ "-std=gnu11", "-D_GNU_SOURCE", "-D_POSIX_C_SOURCE=200112", "-fno-strict-aliasing", "-w" },
        .macos, .ios => &.{ "-std=gnu11", "-D_DARWIN_UNLIMITED_SELECT=1", "-D_DARWIN_USE_64_BIT_INODE=1", "-fno-strict-aliasing", "-w" },
        else => &.{ "-std=gnu11", "-fno-strict-aliasing", "-w" },
    };
    return .{ .vendored = .{ .dir = dir, .files = files.items, .flags = flags } };
}

// ---- checked builds (see the top of this file) --------------------------------------------

/// How the checked builds compile: the outside compiler, where the engine's
/// src/ and include/ come from, and libuv's source (for the sanitizer builds).
const Checked = struct {
    b: *std.Build,
    cc: []const u8,
    engine_root: []const u8,
    uv: ?Libuv,

    /// A file of the engine (src/, include/) under -Dengine-root.
    fn enginePath(c: Checked, sub_path: []const u8) std.Build.LazyPath {
        const joined = c.b.pathJoin(&.{ c.engine_root, sub_path });
        if (std.fs.path.isAbsolute(joined)) return .{ .cwd_relative = joined };
        return c.b.path(joined);
    }

    /// The engine's sources for Linux: the core, io_uring and libuv.
    fn linuxEngineSources(c: Checked) []const std.Build.LazyPath {
        var list: std.ArrayList(std.Build.LazyPath) = .empty;
        for (core_sources ++ io_uring_sources ++ uv_sources) |f|
            list.append(c.b.allocator, c.enginePath(f)) catch @panic("OOM");
        return list.items;
    }

    /// The include folders of a program that uses the engine: include/, src/
    /// (both under -Dengine-root) and test_c/ (the fake Dart VM, byte streams).
    fn engineIncludes(c: Checked) []const std.Build.LazyPath {
        return c.b.allocator.dupe(std.Build.LazyPath, &.{
            c.enginePath("include"), c.enginePath("src"), c.b.path("test_c"),
        }) catch @panic("OOM");
    }

    /// cc FLAGS -I... -c SOURCE -o OBJECT, with a dependency file so that
    /// Zig's cache sees the headers. Returns the object.
    fn compile(
        c: Checked,
        source: std.Build.LazyPath,
        flags: []const []const u8,
        includes: []const std.Build.LazyPath,
    ) std.Build.LazyPath {
        const run = c.b.addSystemCommand(&.{c.cc});
        run.setName(c.b.fmt("{s} {s}", .{ c.cc, source.getDisplayName() }));
        run.addArgs(flags);
        for (includes) |dir| run.addPrefixedDirectoryArg("-I", dir);
        run.addArgs(&.{ "-MD", "-MF" });
        _ = run.addDepFileOutputArg("object.d");
        run.addArg("-c");
        run.addFileArg(source);
        run.addArg("-o");
        return run.addOutputFileArg("object.o");
    }

    fn compileAll(
        c: Checked,
        sources: []const std.Build.LazyPath,
        flags: []const []const u8,
        includes: []const std.Build.LazyPath,
    ) []const std.Build.LazyPath {
        var objects: std.ArrayList(std.Build.LazyPath) = .empty;
        for (sources) |s| objects.append(c.b.allocator, c.compile(s, flags, includes)) catch @panic("OOM");
        return objects.items;
    }

    /// cc FLAGS [-Wl,--version-script=SCRIPT] OBJECTS... INPUTS... LIBS -o NAME.
    /// Returns the output.
    fn link(
        c: Checked,
        name: []const u8,
        flags: []const []const u8,
        version_script: ?std.Build.LazyPath,
        objects: []const std.Build.LazyPath,
        inputs: []const std.Build.LazyPath,
        libs: []const []const u8,
    ) std.Build.LazyPath {
        const run = c.b.addSystemCommand(&.{c.cc});
        run.setName(c.b.fmt("{s}: link {s}", .{ c.cc, name }));
        run.addArgs(flags);
        if (version_script) |script| run.addPrefixedFileArg("-Wl,--version-script=", script);
        for (objects) |o| run.addFileArg(o);
        for (inputs) |i| run.addFileArg(i);
        run.addArgs(libs);
        run.addArg("-o");
        return run.addOutputFileArg(name);
    }

    fn paths(c: Checked, files: []const []const u8) []const std.Build.LazyPath {
        var list: std.ArrayList(std.Build.LazyPath) = .empty;
        for (files) |f| list.append(c.b.allocator, c.b.path(f)) catch @panic("OOM");
        return list.items;
    }

    /// Installs file as <prefix>/<dir>/<name> when step runs.
    fn install(c: Checked, step: *std.Build.Step, file: std.Build.LazyPath, dir: []const u8, name: []const u8) void {
        const inst = c.b.addInstallFileWithDir(file, .prefix, c.b.pathJoin(&.{ dir, name }));
        step.dependOn(&inst.step);
    }
};

/// Debian's static libuv, linked into the fuzzer and the reliability tools.
const debian_libuv_archive = "/usr/lib/x86_64-linux-gnu/libuv_a.a";

fn addCheckedBuilds(b: *std.Build, uv: ?Libuv) void {
    const c = Checked{
        .b = b,
        .cc = b.option([]const u8, "checked-cc", "C compiler of the checked builds (default clang-14)") orelse "clang-14",
        .engine_root = b.option([]const u8, "engine-root", "Checked builds: src/, include/ from here") orelse ".",
        .uv = uv,
    };
    const address = &.{ "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer" };
    addSanitizerBuild(c, "address", address);
    addSanitizerBuild(c, "thread", &.{"-fsanitize=thread"});
    addSimSanitizerBuild(c, address);
    addFuzzBuild(c);
    addReliabilityTool(c, "faults", "-O1");
    addReliabilityTool(c, "soak", "-O2");
    addReliabilityTool(c, "repro_restart_shutdown", "-O1");
    addNfqDelay(c);
}

/// `sanitize-MODE`: libzig_tcp.so (engine and libuv, both sanitized so that
/// TSan sees libuv's atomics too) and tcp_suite linked to it, installed into
/// <prefix>/san-MODE/.
fn addSanitizerBuild(c: Checked, mode: []const u8, sanitize: []const []const u8) void {
    const b = c.b;
    const description = b.fmt("Engine + suite with clang's {s} sanitizer into <prefix>/san-{s}/", .{ mode, mode });
    const step = b.step(b.fmt("sanitize-{s}", .{mode}), description);
    const libuv = (c.uv orelse Libuv{ .vendored = null }).vendored orelse {
        step.dependOn(&b.addFail("the sanitizer builds need libuv's source (tools/fetch-libuv.sh)").step);
        return;
    };
    const common = concat(b, &.{ &.{ "-g", "-O1" }, sanitize });
    const uv_dir = b.path(libuv.dir);
    var uv_files: std.ArrayList(std.Build.LazyPath) = .empty;
    for (libuv.files) |f| uv_files.append(b.allocator, uv_dir.path(b, f)) catch @panic("OOM");
    const uv_include = uv_dir.path(b, "include");
    const uv_flags = concat(b, &.{ common, &.{"-fPIC"}, libuv.flags });
    const uv_objects = c.compileAll(uv_files.items, uv_flags, &.{ uv_include, uv_dir.path(b, "src") });

    const engine_flags = concat(b, &.{ common, &c_flags, &.{ "-fPIC", "-DZIG_TCP_HAVE_IO_URING=1" } });
    const engine_includes = concatPaths(b, &.{ c.engineIncludes(), &.{uv_include} });
    const engine_objects = c.compileAll(c.linuxEngineSources(), engine_flags, engine_includes);
    const so_flags = concat(b, &.{ common, &.{ "-shared", "-Wl,-soname,libzig_tcp.so" } });
    const exports = c.enginePath("src/exports.map");
    const so = c.link("libzig_tcp.so", so_flags, exports, engine_objects, uv_objects, &.{ "-lpthread", "-ldl", "-lrt" });

    const suite_objects = c.compileAll(c.paths(&suite_sources), concat(b, &.{ common, &c_flags }), c.engineIncludes());
    // The suite finds the library beside itself ($ORIGIN), where both are installed.
    const suite_flags = concat(b, &.{ common, &.{"-Wl,-rpath,$ORIGIN"} });
    const suite = c.link("tcp_suite", suite_flags, null, suite_objects, &.{so}, &.{"-lpthread"});
    const dir = b.fmt("san-{s}", .{mode});
    c.install(step, so, dir, "libzig_tcp.so");
    c.install(step, suite, dir, "tcp_suite");
}

/// `sim-address`: sim_test (the core, the simulation backend and the test, all
/// with ASan+UBSan+LSan) into <prefix>/san-address/sim_test.
fn addSimSanitizerBuild(c: Checked, sanitize: []const []const u8) void {
    const b = c.b;
    const step = b.step("sim-address", "The simulation test with ASan+UBSan+LSan into <prefix>/san-address/");
    const flags = concat(b, &.{ &.{ "-g", "-O1" }, sanitize, &c_flags, &.{ "-DZIG_TCP_HAVE_SIM=1", "-DZIG_TCP_ASSERTS=1" } });
    var engine: std.ArrayList(std.Build.LazyPath) = .empty;
    for (core_sources ++ sim_sources) |f| engine.append(b.allocator, c.enginePath(f)) catch @panic("OOM");
    const objects = concatPaths(b, &.{
        c.compileAll(engine.items, flags, c.engineIncludes()),
        c.compileAll(c.paths(&sim_test_sources), flags, c.engineIncludes()),
    });
    const program = c.link("sim_test", concat(b, &.{ &.{ "-g", "-O1" }, sanitize }), null, objects, &.{}, &.{"-lpthread"});
    c.install(step, program, "san-address", "sim_test");
}

/// Flags of the engine and the test program in the fuzz and reliability builds
/// (as their scripts had them; the sanitizer builds use c_flags).
fn toolFlags(b: *std.Build, opt_and_sanitize: []const []const u8) []const []const u8 {
    const flags = &.{ "-g", "-std=gnu11", "-Wall", "-DZIG_TCP_HAVE_IO_URING=1", "-D_GNU_SOURCE" };
    return concat(b, &.{ opt_and_sanitize, flags });
}

/// A test program (its own sources) built straight from the engine's sources
/// (so they carry its instrumentation), the fake Dart VM and the byte
/// streams, with Debian's libuv archive. Returns the linked program.
fn engineProgram(
    c: Checked,
    name: []const u8,
    program_sources: []const []const u8,
    flags: []const []const u8,
    link_flags: []const []const u8,
) std.Build.LazyPath {
    const b = c.b;
    const own_sources = c.paths(concat(b, &.{ program_sources, &.{ "test_c/fake_dart.c", "test_c/byte_stream.c" } }));
    const own = c.compileAll(own_sources, flags, c.engineIncludes());
    const engine = c.compileAll(c.linuxEngineSources(), flags, c.engineIncludes());
    const objects = concatPaths(b, &.{ own, engine });
    const libuv: std.Build.LazyPath = .{ .cwd_relative = debian_libuv_archive };
    return c.link(name, link_flags, null, objects, &.{libuv}, &.{ "-lpthread", "-ldl", "-lrt" });
}

/// `fuzz`: the operation-sequence fuzzer (libFuzzer + ASan + UBSan + LSan)
/// into <prefix>/fuzz/fuzz_ops.
fn addFuzzBuild(c: Checked) void {
    const b = c.b;
    const step = b.step("fuzz", "The libFuzzer fuzzer (fuzz_sources) into <prefix>/fuzz/");
    const sanitize: []const []const u8 = &.{
        "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer",
    };
    const flags = concat(b, &.{ toolFlags(b, sanitize), &.{ "-Wextra", "-Wno-unused-parameter" } });
    const program = engineProgram(c, "fuzz_ops", &fuzz_sources, flags, sanitize);
    c.install(step, program, "fuzz", "fuzz_ops");
}

/// `NAME`: reliability/NAME.c with the engine into <prefix>/reliability/NAME.
fn addReliabilityTool(c: Checked, name: []const u8, opt: []const u8) void {
    const b = c.b;
    const step = b.step(name, b.fmt("reliability/{s}.c into <prefix>/reliability/", .{name}));
    const source: []const []const u8 = &.{b.fmt("reliability/{s}.c", .{name})};
    const program = engineProgram(c, name, source, toolFlags(b, &.{opt}), &.{opt});
    c.install(step, program, "reliability", name);
}

/// `nfq_delay`: the NFQUEUE delay tool of tools/faults.sh (needs
/// libnetfilter-queue-dev) into <prefix>/reliability/nfq_delay.
fn addNfqDelay(c: Checked) void {
    const b = c.b;
    const step = b.step("nfq_delay", "reliability/nfq_delay.c into <prefix>/reliability/");
    const flags: []const []const u8 = &.{ "-O2", "-g", "-Wall" };
    const objects = c.compileAll(c.paths(&.{"reliability/nfq_delay.c"}), flags, &.{});
    const program = c.link("nfq_delay", flags, null, objects, &.{}, &.{"-lnetfilter_queue"});
    c.install(step, program, "reliability", "nfq_delay");
}

/// Lists of flags (or file names) joined into one.
fn concat(b: *std.Build, parts: []const []const []const u8) []const []const u8 {
    return std.mem.concat(b.allocator, []const u8, parts) catch @panic("OOM");
}

fn concatPaths(b: *std.Build, parts: []const []const std.Build.LazyPath) []const std.Build.LazyPath {
    return std.mem.concat(b.allocator, std.Build.LazyPath, parts) catch @panic("OOM");
}
