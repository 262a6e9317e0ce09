// IPv6 scope ids (lib/src/scope.dart): the 20-byte engine form of a scoped
// address, the text dart:io prints for one, host Strings as dart:io takes
// them, the OS's interface names, and a link-local connect where this
// machine has a link-local address. The C suite's test_ipv6_scope_id
// (test_c/test_options.c) pins the engine's side in a network namespace.

import 'dart:io';
import 'dart:typed_data';

import 'package:test/test.dart';
import 'package:zig_tcp/src/scope.dart';
import 'package:zig_tcp/zig_tcp.dart';

import 'support.dart';

/// The 16 bytes of fe80::1.
final Uint8List fe80one = InternetAddress('fe80::1').rawAddress;

/// The scope id in a 20-byte engine address (tcp.h: host byte order).
int scopeIdIn(Uint8List engineBytes) {
  expect(engineBytes, hasLength(scopedAddressBytes));
  return ByteData.sublistView(engineBytes).getUint32(16, Endian.host);
}

/// The scope id an address carries in its text (0: none), names resolved
/// by the OS.
int scopeIdOfAddress(InternetAddress address) {
  final String? scope = scopeTextOf(address.address);
  return scope == null ? 0 : scopeIdOf(scope);
}

/// A resolver that must not be asked.
int noLookup(String name) => fail('the resolver was asked for "$name"');

/// The interface that has the loopback address, or null.
Future<NetworkInterface?> loopbackInterface() async {
  final List<NetworkInterface> all = await NetworkInterface.list(
      includeLoopback: true, includeLinkLocal: true);
  for (final NetworkInterface candidate in all) {
    if (candidate.addresses.any((InternetAddress a) => a.isLoopback)) {
      return candidate;
    }
  }
  return null;
}

/// A link-local IPv6 address of this machine and its interface.
final class LinkLocal {
  LinkLocal(this.networkInterface, this.raw);

  final NetworkInterface networkInterface;

  /// The 16 bytes, without any scope.
  final Uint8List raw;

  String get bare => InternetAddress.fromRawAddress(raw).address;
}

/// A link-local IPv6 address on a loopback interface, or null (then the test
/// that needs one is skipped). Only loopback interfaces are considered: the
/// project's tests never use an address outside loopback or a namespace they
/// make themselves. (Linux's lo has no fe80:: address by default; the C suite's
/// `ipv6_scope_id` makes one in its own network namespace.)
Future<LinkLocal?> findLinkLocal() async {
  final List<NetworkInterface> all = await NetworkInterface.list(
      includeLoopback: true,
      includeLinkLocal: true,
      type: InternetAddressType.IPv6);
  bool loopback(NetworkInterface i) =>
      i.addresses.any((InternetAddress a) => a.isLoopback);
  final List<NetworkInterface> ordered = all.where(loopback).toList();
  for (final NetworkInterface candidate in ordered) {
    for (final InternetAddress address in candidate.addresses) {
      final Uint8List raw = address.rawAddress;
      if (raw.length != 16 || raw[0] != 0xfe || (raw[1] & 0xc0) != 0x80) {
        continue;
      }
      // macOS's getifaddrs embeds the scope in bytes 2-3 (KAME); in
      // fe80::/64 they are zero.
      raw[2] = 0;
      raw[3] = 0;
      return LinkLocal(candidate, raw);
    }
  }
  return null;
}

/// Reads until [n] bytes arrived.
Future<List<int>> readBytes(Connection connection, int n) async {
  final List<int> got = <int>[];
  while (got.length < n) {
    final Uint8List? chunk = await connection.read();
    if (chunk == null) fail('end of stream after ${got.length} of $n bytes');
    got.addAll(chunk);
  }
  return got;
}

void main() {
  group('the engine form (tcp.h: 4, 16, or 16 + uint32 scope id)', () {
    test('IPv4 and unscoped IPv6 keep their 4 and 16 bytes', () {
      Uint8List engine(InternetAddress a) =>
          engineAddress(a, 'host', indexOf: noLookup);
      expect(engine(InternetAddress.loopbackIPv4), <int>[127, 0, 0, 1]);
      expect(engine(InternetAddress.loopbackIPv6),
          InternetAddress.loopbackIPv6.rawAddress);
      expect(engine(InternetAddress('fe80::1')), fe80one);
    });

    test('a numeric scope: the 16 bytes, then the id in host byte order', () {
      final InternetAddress scoped = InternetAddress('fe80::1%5');
      expect(scoped.address, 'fe80::1%5'); // dart:io keeps the text
      final Uint8List bytes =
          engineAddress(scoped, 'host', indexOf: noLookup);
      expect(bytes.sublist(0, 16), fe80one);
      expect(scopeIdIn(bytes), 5);
      final int lowByte = Endian.host == Endian.little ? 16 : 19;
      expect(bytes[lowByte], 5);
      expect(withScopeId(fe80one, 0x01020304).sublist(16),
          Endian.host == Endian.little
              ? <int>[4, 3, 2, 1]
              : <int>[1, 2, 3, 4]);
    });

    test('scope ids: digits as they are, names through the resolver', () {
      final List<String> asked = <String>[];
      int fake(String name) {
        asked.add(name);
        return name == 'eth9' ? 7 : 0;
      }

      expect(scopeIdOf('12', indexOf: fake), 12);
      expect(scopeIdOf('0', indexOf: fake), 0);
      expect(scopeIdOf('4294967295', indexOf: fake), scopeIdMax);
      expect(scopeIdOf('eth9', indexOf: fake), 7);
      expect(asked, <String>['eth9']);
      expect(() => scopeIdOf('nosuch0', indexOf: fake, argumentName: 'host'),
          throwsA(isArgumentError.having(
              (ArgumentError e) => e.name, 'name', 'host')));
      expect(() => scopeIdOf('', indexOf: fake), throwsArgumentError);
      expect(() => scopeIdOf('4294967296', indexOf: fake), throwsArgumentError);
      expect(scopeTextOf('fe80::1%eth9'), 'eth9');
      expect(scopeTextOf('fe80::1'), isNull);
    });

    test('a named scope in an InternetAddress goes through the resolver',
        () async {
      final NetworkInterface? lo = await loopbackInterface();
      if (lo == null) {
        markTestSkipped('no loopback interface in NetworkInterface.list');
        return;
      }
      // dart:io parses the name itself (getaddrinfo), so it must exist.
      final InternetAddress scoped = InternetAddress('fe80::1%${lo.name}');
      final List<String> asked = <String>[];
      final Uint8List bytes = engineAddress(scoped, 'host',
          indexOf: (String name) {
        asked.add(name);
        return 77;
      });
      expect(asked, <String>[lo.name]);
      expect(scopeIdIn(bytes), 77);
      // With the OS's resolver: the interface's own index.
      expect(scopeIdIn(engineAddress(scoped, 'host')), lo.index);
    }, testOn: '!windows'); // Windows lists friendly names, not if names
  });

  group('the text of a scoped address (as dart:io prints one)', () {
    String? nameOf(int index) => index == 3 ? 'eth9' : null;

    test('link-local: the interface name on POSIX, the number on Windows', () {
      expect(scopedAddressText(fe80one, 3, nameOf: nameOf, named: true),
          'fe80::1%eth9');
      expect(scopedAddressText(fe80one, 3, nameOf: nameOf, named: false),
          'fe80::1%3');
      expect(scopedAddressText(fe80one, 4, nameOf: nameOf, named: true),
          'fe80::1%4'); // no name for 4
      final Uint8List multicast = InternetAddress('ff02::1').rawAddress;
      expect(scopedAddressText(multicast, 3, nameOf: nameOf, named: true),
          'ff02::1%eth9');
      // Other scoped addresses print the number (getnameinfo names only
      // link-local scopes).
      final Uint8List unique = InternetAddress('fd00::1').rawAddress;
      expect(scopedAddressText(unique, 3, nameOf: nameOf, named: true),
          'fd00::1%3');
    });

    test('which addresses name their scope', () {
      bool named(String text) => scopeIsNamed(InternetAddress(text).rawAddress);
      expect(named('fe80::1'), isTrue);
      expect(named('febf::1'), isTrue);
      expect(named('fec0::1'), isFalse);
      expect(named('ff02::1'), isTrue);
      expect(named('ff05::1'), isFalse);
      expect(named('::1'), isFalse);
    });

    test('addresses from the engine carry their scope in dart:io form', () {
      expect(addressFromEngine(fe80one, 0).address, 'fe80::1');
      expect(addressFromEngine(Uint8List.fromList(<int>[127, 0, 0, 1]), 0),
          InternetAddress.loopbackIPv4);
      final InternetAddress scoped =
          addressFromEngine(fe80one, 9, nameOf: nameOf, named: false);
      expect(scoped.address, 'fe80::1%9');
      expect(scoped.host, 'fe80::1%9');
      expect(scoped.type, InternetAddressType.IPv6);
      expect(scoped.rawAddress, fe80one);
      // Back to the engine: the same 20 bytes.
      expect(scopeIdIn(engineAddress(scoped, 'host', indexOf: noLookup)), 9);
      // A name the OS does not know (dart:io refuses to parse it): the
      // number instead.
      final InternetAddress unknown = addressFromEngine(fe80one, 9,
          nameOf: (int index) => 'zt-no-such-if', named: true);
      expect(unknown.address, 'fe80::1%9');
    });

    test('the OS resolver: if_nametoindex and if_indextoname agree with '
        'NetworkInterface.list', () async {
      expect(interfaceIndexOf('zt-no-such-if'), 0);
      final NetworkInterface? lo = await loopbackInterface();
      if (lo == null) {
        markTestSkipped('no loopback interface in NetworkInterface.list');
        return;
      }
      expect(interfaceIndexOf(lo.name), lo.index);
      expect(interfaceNameOf(lo.index), lo.name);
      expect(addressFromEngine(fe80one, lo.index).address,
          'fe80::1%${lo.name}');
    }, testOn: '!windows');

    test('Windows: scopes print as numbers; unknown names resolve to 0', () {
      expect(interfaceIndexOf('zt-no-such-if'), 0);
      expect(interfaceNameOf(1), isNull);
      expect(addressFromEngine(fe80one, 1).address, 'fe80::1%1');
    }, testOn: 'windows');
  });

  group('host Strings, as dart:io takes them', () {
    test('a % only in a link-local address; %25 is the escape of %', () {
      expect(unescapeScopedHost('fe80::1%25eth0'), 'fe80::1%eth0');
      expect(unescapeScopedHost('fe80::1%eth0'), 'fe80::1%eth0');
      expect(unescapeScopedHost('FE80::1%2'), 'FE80::1%2');
      expect(unescapeScopedHost('::1'), '::1');
      expect(unescapeScopedHost('localhost'), 'localhost');
      expect(() => unescapeScopedHost('::1%1'), throwsFormatException);
      expect(() => unescapeScopedHost('127.0.0.1%1'), throwsFormatException);
      expect(() => unescapeScopedHost('fe8%1'), throwsFormatException);
    });

    test('connect throws the FormatException at once; bind through its '
        'future', () async {
      expect(thrownAtOnce(() => Connection.connect('127.0.0.1%1', 80)),
          isFormatException);
      expect(thrownAtOnce(() => ZigSocket.connect('::1%1', 80)),
          isFormatException);
      await expectLater(Listener.bind('::1%1', 0), throwsFormatException);
    });
  });

  test('a link-local address: the scope reaches the engine and comes back',
      () async {
    final LinkLocal? here = await findLinkLocal();
    if (here == null) {
      markTestSkipped('no link-local IPv6 address on this machine '
          '(NetworkInterface.list)');
      return;
    }
    final int index = here.networkInterface.index;
    final Listener listener =
        await Listener.bind(InternetAddress('${here.bare}%$index'), 0);
    addTearDown(listener.close);
    expect(listener.address.rawAddress, here.raw);
    expect(scopeIdOfAddress(listener.address), index);
    final int port = listener.port;

    if (Platform.isLinux) {
      // Without its scope the kernel cannot tell the interface: EINVAL
      // (the C suite's test_ipv6_scope_id shows the same).
      await expectLater(
          Connection.connect(InternetAddress.fromRawAddress(here.raw), port),
          throwsA(isA<SocketException>()));
    }

    // A String host with the URI escape, as dart:io takes it.
    final Future<Connection> accepted = listener.accept();
    final Connection client =
        await Connection.connect('${here.bare}%25$index', port);
    final Connection server = await accepted;
    expect(client.remoteAddress.rawAddress, here.raw);
    for (final InternetAddress end in <InternetAddress>[
      client.remoteAddress,
      client.address,
      server.remoteAddress,
      server.address,
    ]) {
      expect(scopeIdOfAddress(end), index, reason: end.address);
    }
    expect(server.remotePort, client.port);
    await client.write(<int>[1, 2, 3]);
    expect(await readBytes(server, 3), <int>[1, 2, 3]);

    // The listener's own address as the destination (named scope on
    // POSIX), with a scoped source address (tcp_connect's source in the
    // 20-byte form too).
    final Future<Connection> accepted2 = listener.accept();
    final Connection client2 = await Connection.connect(listener.address, port,
        sourceAddress: InternetAddress('${here.bare}%$index'));
    final Connection server2 = await accepted2;
    expect(client2.address.rawAddress, here.raw);
    expect(server2.remotePort, client2.port);

    // The scope of our address objects is dart:io's own too: dart:io's
    // Socket.connect, given client.remoteAddress, reaches the interface.
    final Future<Connection> accepted3 = listener.accept();
    final Socket viaDartIo = await Socket.connect(client.remoteAddress, port);
    final Connection server3 = await accepted3;
    expect(server3.remotePort, viaDartIo.port);
    viaDartIo.destroy();

    // ZigServerSocket: a String address with the escape, the scope on
    // its address.
    final ZigServerSocket zig =
        await ZigServerSocket.bind('${here.bare}%25$index', 0);
    expect(scopeIdOfAddress(zig.address), index);
    await zig.close();

    for (final Connection c in <Connection>[
      client,
      server,
      client2,
      server2,
      server3
    ]) {
      await c.close();
    }
  });
}
