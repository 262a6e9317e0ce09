//! zig_tcp build: the engine as a shared library (what Dart loads) and a
//! static one, the backend picked by target OS; plus the C test suite, the
//! demo and the benchmark tools.
//!
//!   ./zigw build                                  native library + tools
//!   ./zigw build -Dtarget=x86_64-windows-gnu      DLL + suite .exe (IOCP)
//!   ./zigw build -Dtarget=aarch64-macos           libuv backend, compile only
const std = @import("std");

/// Shared by every backend: handle table, posting, errors, addresses.
const core_sources = [_][]const u8{
    "src/engine.c",
    "src/sockets.c",
    "src/errors.c",
    "src/dart_post.c",
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

    // Everything below runs on the engine; macOS/BSD cross builds stop here.
    if (os != .linux and os != .windows) return;

    // The backend-agnostic C suite, linked to the shipped shared library.
    const suite = addTool(b, "tcp_suite", &.{ "test_c/suite.c", "test_c/fake_dart.c" }, target, optimize, tsan, lib_shared);
    b.installArtifact(suite);

    if (os == .linux) {
        // Run-time fallback from io_uring to libuv (seccomp-blocked io_uring).
        const fallback = addTool(b, "tcp_fallback_test", &.{ "test_c/fallback_test.c", "test_c/fake_dart.c" }, target, optimize, tsan, lib_shared);
        b.installArtifact(fallback);
        b.installArtifact(addTool(b, "stress_cancel_backlog", &.{ "test_c/stress_cancel_backlog.c", "test_c/fake_dart.c" }, target, optimize, tsan, lib_shared));
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
    mod.addCSourceFiles(.{ .files = &core_sources, .flags = &c_flags });
    switch (backend) {
        .iocp => {
            mod.addCSourceFiles(.{ .files = &.{"src/backend_iocp.c"}, .flags = &c_flags });
            mod.linkSystemLibrary("ws2_32", .{});
            mod.linkSystemLibrary("mswsock", .{});
        },
        .io_uring_with_uv => {
            mod.addCMacro("ZIG_TCP_HAVE_IO_URING", "1");
            mod.addCSourceFiles(.{ .files = &.{ "src/backend_io_uring.c", "src/backend_uv.c" }, .flags = &c_flags });
            mod.linkSystemLibrary("pthread", .{});
            mod.linkSystemLibrary("dl", .{});
            mod.linkSystemLibrary("rt", .{});
        },
        .uv => {
            mod.addCSourceFiles(.{ .files = &.{"src/backend_uv.c"}, .flags = &c_flags });
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
