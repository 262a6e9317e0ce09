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
    const uv_archive_opt = b.option([]const u8, "uv-archive", "Path of libuv's static archive (Linux)");
    const uv_include_opt = b.option([]const u8, "uv-include", "Folder holding uv.h (cross builds)");

    const triple_arch: []const u8 = switch (target.result.cpu.arch) {
        .x86_64 => "x86_64",
        .aarch64 => "aarch64",
        else => "unknown",
    };
    const uv_archive = uv_archive_opt orelse
        b.fmt("/usr/lib/{s}-linux-gnu/libuv_a.a", .{triple_arch});

    const lib_shared = addEngine(b, .dynamic, target, optimize, backend, tsan, uv_archive, uv_include_opt);
    const lib_static = addEngine(b, .static, target, optimize, backend, tsan, uv_archive, uv_include_opt);
    b.installArtifact(lib_shared);
    b.installArtifact(lib_static);

    // Everything below runs on the engine; macOS/BSD cross builds stop here.
    if (os != .linux and os != .windows) return;

    // The backend-agnostic C suite, linked to the shipped shared library.
    const suite = addTool(b, "tcp_suite", &.{ "test_c/suite.c", "test_c/fake_dart.c" }, target, optimize, tsan, lib_shared);
    b.installArtifact(suite);

    if (os == .linux) {
        // Run-time fallback from io_uring to libuv (seccomp-blocked io_uring).
        const fallback = addTool(b, "tcp_fallback_test", &.{ "test_c/fallback_test.c", "test_c/fake_dart.c" }, target, optimize, tsan, lib_shared);
        b.installArtifact(fallback);
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
    uv_archive: []const u8,
    uv_include: ?[]const u8,
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
    if (uv_include) |dir| mod.addIncludePath(.{ .cwd_relative = dir });
    mod.addCSourceFiles(.{ .files = &core_sources, .flags = &c_flags });
    switch (backend) {
        .iocp => {
            mod.addCSourceFiles(.{ .files = &.{"src/backend_iocp.c"}, .flags = &c_flags });
            mod.linkSystemLibrary("ws2_32", .{});
            mod.linkSystemLibrary("mswsock", .{});
        },
        .io_uring_with_uv => {
            mod.addCSourceFiles(.{
                .files = &.{ "src/backend_io_uring.c", "src/backend_uv.c" },
                // The shared library embeds libuv_a.a, whose PIE-only relocations
                // backend_uv.c satisfies under ZIG_TCP_UV_STATIC_IN_SHARED.
                .flags = if (linkage == .dynamic)
                    &(c_flags ++ [_][]const u8{ "-DZIG_TCP_HAVE_IO_URING=1", "-DZIG_TCP_UV_STATIC_IN_SHARED=1" })
                else
                    &(c_flags ++ [_][]const u8{"-DZIG_TCP_HAVE_IO_URING=1"}),
            });
            // libuv linked statically so users need no libuv at run time.
            if (linkage == .dynamic) mod.addObjectFile(.{ .cwd_relative = uv_archive });
            mod.linkSystemLibrary("pthread", .{});
            mod.linkSystemLibrary("dl", .{});
        },
        .uv => {
            mod.addCSourceFiles(.{ .files = &.{"src/backend_uv.c"}, .flags = &c_flags });
        },
    }
    const lib = b.addLibrary(.{
        .linkage = linkage,
        .name = "zig_tcp",
        .root_module = mod,
    });
    if (backend == .uv and linkage == .dynamic) {
        // macOS/BSD: libuv comes from the user's system (see README).
        lib.linker_allow_shlib_undefined = true;
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
