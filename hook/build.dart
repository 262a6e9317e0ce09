// Build hook: compiles the zig_tcp engine with the repository's Zig build for
// the target the Dart/Flutter SDK asks for, and bundles the shared library as
// the code asset `package:zig_tcp/src/bindings.dart` (lib/src/bindings.dart's
// @Native functions name that asset id).
//
// Zig: `<package root>/zigw` (installs the pinned Zig from PyPI on first use;
// needs bash and python3, so not on Windows hosts), otherwise `zig` on PATH.
// Build hooks see only an allow-listed environment, so the choice is made
// here rather than by an environment variable.

import 'dart:io';

import 'package:code_assets/code_assets.dart';
import 'package:hooks/hooks.dart';

void main(List<String> args) async {
  await build(args, (BuildInput input, BuildOutputBuilder output) async {
    if (!input.config.buildCodeAssets) return;
    final CodeConfig code = input.config.code;
    if (code.linkModePreference == LinkModePreference.static) {
      // The engine is only ever loaded as a dynamic library (@Native with an
      // asset id); the SDK's output validation rejects a DynamicLoadingBundled
      // asset under a static-only preference, so say why up front.
      throw UnsupportedError(
          'zig_tcp: only dynamic loading is supported, but the build asks '
          'for LinkModePreference.static');
    }
    final OS os = code.targetOS;
    final String triple = zigTriple(code);

    final Uri root = input.packageRoot;
    final Uri prefix = input.outputDirectory.resolve('zig-out/');
    final Uri cache = input.outputDirectory.resolve('zig-cache/');
    final Uri globalCache = input.outputDirectoryShared.resolve('zig-global-cache/');

    final List<String> command = zigCommand(root);
    // `zig build lib` builds only the engine libraries (no C suite, demo or
    // benchmark tools), installed under <prefix>/lib (and <prefix>/bin for
    // Windows DLLs).
    final List<String> arguments = <String>[
      ...command.skip(1),
      'build',
      'lib',
      '-Dtarget=$triple',
      '--release=safe',
      '--prefix',
      prefix.toFilePath(),
      '--cache-dir',
      cache.toFilePath(),
    ];
    final ProcessResult result = await Process.run(command.first, arguments,
        workingDirectory: root.toFilePath(),
        environment: <String, String>{
          'ZIG_GLOBAL_CACHE_DIR': globalCache.toFilePath(),
        });
    if (result.exitCode != 0) {
      throw Exception('zig_tcp: `${command.join(' ')} ${arguments.join(' ')}` '
          'failed with exit code ${result.exitCode}\n'
          '${result.stdout}\n${result.stderr}');
    }

    // Zig installs a Windows DLL in bin/ (its import library goes to lib/),
    // every other shared library in lib/: libzig_tcp.so, libzig_tcp.dylib,
    // zig_tcp.dll (OS.dylibFileName).
    final Uri library = os == OS.windows
        ? prefix.resolve('bin/${os.dylibFileName('zig_tcp')}')
        : prefix.resolve('lib/${os.dylibFileName('zig_tcp')}');
    if (!File.fromUri(library).existsSync()) {
      throw Exception('zig_tcp: the Zig build did not produce $library');
    }

    output.assets.code.add(
      CodeAsset(
        package: input.packageName,
        name: 'src/bindings.dart',
        linkMode: DynamicLoadingBundled(),
        file: library,
      ),
    );

    // Rerun the hook when the engine's sources or build change: build.zig,
    // its manifest, the pinned tool versions, the header and every file in
    // src/ (C sources, private headers, the Linux export map).
    output.dependencies.addAll(<Uri>[
      root.resolve('build.zig'),
      root.resolve('build.zig.zon'),
      root.resolve('tools/versions.env'),
      root.resolve('include/tcp.h'),
    ]);
    final Directory sources = Directory.fromUri(root.resolve('src/'));
    if (sources.existsSync()) {
      for (final FileSystemEntity entity in sources.listSync(recursive: true)) {
        if (entity is File) output.dependencies.add(entity.uri);
      }
    }
  });
}

/// The command that runs Zig: `./zigw` where it can run, else `zig`.
List<String> zigCommand(Uri packageRoot) {
  final File wrapper = File.fromUri(packageRoot.resolve('zigw'));
  if (!Platform.isWindows && wrapper.existsSync()) {
    return <String>['bash', wrapper.path];
  }
  return <String>['zig'];
}

/// The Zig target triple for the Dart target OS and architecture.
String zigTriple(CodeConfig code) {
  final OS os = code.targetOS;
  final Architecture arch = code.targetArchitecture;
  final String cpu = zigCpu(arch);
  if (os == OS.linux) {
    if (arch == Architecture.arm) return 'arm-linux-gnueabihf';
    return '$cpu-linux-gnu';
  }
  if (os == OS.windows) return '$cpu-windows-gnu';
  if (os == OS.macOS) return '$cpu-macos';
  if (os == OS.iOS) {
    final bool simulator = code.iOS.targetSdk == IOSSdk.iPhoneSimulator;
    return simulator ? '$cpu-ios-simulator' : '$cpu-ios';
  }
  if (os == OS.android) {
    if (arch == Architecture.arm) return 'arm-linux-androideabi';
    return '$cpu-linux-android';
  }
  throw UnsupportedError('zig_tcp: no Zig target for $os');
}

/// Zig's name of a Dart [Architecture].
String zigCpu(Architecture arch) {
  if (arch == Architecture.x64) return 'x86_64';
  if (arch == Architecture.arm64) return 'aarch64';
  if (arch == Architecture.ia32) return 'x86';
  if (arch == Architecture.arm) return 'arm';
  if (arch == Architecture.riscv64) return 'riscv64';
  throw UnsupportedError('zig_tcp: no Zig CPU for $arch');
}
