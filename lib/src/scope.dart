// IPv6 scope ids between dart:io's InternetAddress and the engine (tcp.h:
// an address is 4 bytes, 16, or 20 = 16 IPv6 bytes + the uint32 scope id in
// host byte order; tcp_local_scope_id / tcp_remote_scope_id read it back).
//
// dart:io keeps an address's scope id in a private field
// (`_InternetAddress._scope_id`, sdk/lib/_internal/vm/bin/socket_patch.dart)
// that code outside dart:io cannot read. What it shows publicly is the text:
// `InternetAddress('fe80::1%eth0')` keeps 'fe80::1%eth0' as its `address`,
// and the addresses dart:io makes from the OS (lookups, `remoteAddress`,
// `NetworkInterface.list`) are printed by getnameinfo(NI_NUMERICHOST) on
// POSIX, which appends '%' and the interface name, or WSAAddressToString on
// Windows, which appends '%' and the index (runtime/bin/socket_base_*.cc).
// So the scope is read from the text after '%', and an address is made with
// a scope by parsing such a text, as dart:io's own parser then sets its
// private field too.
//
// Lives in the library's `src/` and is not exported by
// `package:zig_tcp/zig_tcp.dart`; the tests use it directly.

import 'dart:ffi';
import 'dart:io';
import 'dart:typed_data';

import 'package:ffi/ffi.dart';

/// Resolves a network interface name to its index (if_nametoindex): 0 when
/// no interface has the name.
typedef InterfaceIndexOf = int Function(String name);

/// Names the network interface of an index (if_indextoname): null when there
/// is none.
typedef InterfaceNameOf = String? Function(int index);

/// The largest scope id: sin6_scope_id is a uint32.
const int scopeIdMax = 0xFFFFFFFF;

/// Bytes of an engine address with a scope id.
const int scopedAddressBytes = 20;

/// The text after the '%' of an address text (`'fe80::1%eth0'` -> `'eth0'`),
/// or null when there is no '%'.
String? scopeTextOf(String addressText) {
  final int percent = addressText.indexOf('%');
  return percent < 0 ? null : addressText.substring(percent + 1);
}

/// The scope id that [scope] (the text after '%') names: decimal digits are
/// the id itself, anything else is an interface name resolved with
/// [indexOf].
///
/// dart:io resolves the whole text with getaddrinfo, which (glibc) tries a
/// link-local address's scope as an interface name first and then as a
/// number; only an interface literally named with digits tells the two
/// apart. Throws an [ArgumentError] naming [argumentName] for an empty
/// scope, a number beyond 32 bits, or a name no interface has.
int scopeIdOf(String scope,
    {InterfaceIndexOf indexOf = interfaceIndexOf,
    String argumentName = 'address'}) {
  if (scope.isEmpty) {
    throw ArgumentError.value(scope, argumentName, 'empty IPv6 scope after %');
  }
  if (_isDecimal(scope)) {
    final int? id = int.tryParse(scope);
    if (id == null || id > scopeIdMax) {
      throw ArgumentError.value(
          scope, argumentName, 'IPv6 scope id beyond 32 bits');
    }
    return id;
  }
  final int index = indexOf(scope);
  if (index <= 0) {
    throw ArgumentError.value(
        scope, argumentName, 'no network interface of this name');
  }
  assert(index <= scopeIdMax);
  return index;
}

bool _isDecimal(String text) {
  for (int i = 0; i < text.length; i++) {
    final int unit = text.codeUnitAt(i);
    if (unit < 0x30 || unit > 0x39) return false;
  }
  return text.isNotEmpty;
}

/// The engine's form of [address] for tcp_listen / tcp_connect: its 4 IPv4
/// bytes, its 16 IPv6 bytes, or, for an IPv6 address with a scope
/// (`fe80::1%eth0`, `fe80::1%2`), 20 bytes: the 16 and the scope id.
///
/// Throws an [ArgumentError] naming [argumentName] for an address that is
/// neither IPv4 nor IPv6, or whose scope [scopeIdOf] rejects.
Uint8List engineAddress(InternetAddress address, String argumentName,
    {InterfaceIndexOf indexOf = interfaceIndexOf}) {
  if (address.type == InternetAddressType.IPv4) return address.rawAddress;
  if (address.type != InternetAddressType.IPv6) {
    throw ArgumentError.value(
        address, argumentName, 'must be an IPv4 or IPv6 address');
  }
  final Uint8List raw = address.rawAddress;
  final String? scope = scopeTextOf(address.address);
  if (scope == null) return raw;
  final int scopeId =
      scopeIdOf(scope, indexOf: indexOf, argumentName: argumentName);
  // Scope id 0 is no scope (tcp.h); the engine takes the 16 bytes alone.
  return scopeId == 0 ? raw : withScopeId(raw, scopeId);
}

/// The 20-byte engine address of the 16 IPv6 bytes [raw] and [scopeId].
Uint8List withScopeId(Uint8List raw, int scopeId) {
  assert(raw.length == 16 && scopeId > 0 && scopeId <= scopeIdMax);
  final Uint8List bytes = Uint8List(scopedAddressBytes)..setRange(0, 16, raw);
  ByteData.sublistView(bytes).setUint32(16, scopeId, Endian.host);
  return bytes;
}

/// Whether the OS would print the scope of the IPv6 bytes [raw] as an
/// interface name: a link-local unicast (fe80::/10) or multicast (ff02::/16)
/// address, as glibc's getnameinfo decides (IN6_IS_ADDR_LINKLOCAL,
/// IN6_IS_ADDR_MC_LINKLOCAL). (dart:io's own `isLinkLocal` masks the second
/// byte with 0xB0, which misses fe90:: to febf:: and takes fec0::/12; the
/// mask here is the standard 0xC0.)
bool scopeIsNamed(Uint8List raw) {
  assert(raw.length == 16);
  final bool linkLocal = raw[0] == 0xfe && (raw[1] & 0xc0) == 0x80;
  final bool multicastLinkLocal = raw[0] == 0xff && (raw[1] & 0x0f) == 0x02;
  return linkLocal || multicastLinkLocal;
}

/// The text dart:io's getnameinfo / WSAAddressToString prints for the IPv6
/// bytes [raw] with [scopeId] (> 0): the address, '%', then the interface
/// name (from [nameOf]) when [named] and [scopeIsNamed], else the number.
/// [named] defaults to the platform's way: names on POSIX, numbers on
/// Windows.
String scopedAddressText(Uint8List raw, int scopeId,
    {InterfaceNameOf nameOf = interfaceNameOf, bool? named}) {
  assert(raw.length == 16 && scopeId > 0);
  final String bare = InternetAddress.fromRawAddress(raw).address;
  final bool useName = (named ?? !Platform.isWindows) && scopeIsNamed(raw);
  final String? name = useName ? nameOf(scopeId) : null;
  return '$bare%${name ?? scopeId}';
}

/// The [InternetAddress] of an engine address: [raw] (4 or 16 bytes) and the
/// scope id the engine reported for it (0: none).
///
/// A scoped address is made by parsing its text ([scopedAddressText]), as
/// `InternetAddress('fe80::1%eth0')` would be, so dart:io's own parser sets
/// the scope in it too and the address can go back to dart:io's sockets with
/// it. If the OS no longer knows the name (the interface went away), the
/// numeric text is used; if even that does not parse, the address without
/// its scope.
InternetAddress addressFromEngine(Uint8List raw, int scopeId,
    {InterfaceNameOf nameOf = interfaceNameOf, bool? named}) {
  assert(scopeId >= 0 && scopeId <= scopeIdMax);
  final InternetAddress bare = InternetAddress.fromRawAddress(raw);
  if (scopeId == 0 || raw.length != 16) return bare;
  final String text =
      scopedAddressText(raw, scopeId, nameOf: nameOf, named: named);
  return InternetAddress.tryParse(text) ??
      InternetAddress.tryParse('${bare.address}%$scopeId') ??
      bare;
}

/// A host String as dart:io's `_NativeSocket.escapeLinkLocalAddress`
/// (sdk/lib/_internal/vm/bin/socket_patch.dart) takes it in connect and
/// bind: a '%' is allowed only in a link-local IPv6 address (RFC 6874
/// section 4), else a [FormatException] with dart:io's message; a "25" right
/// after the '%' (the URI escape of '%' itself, `fe80::1%25eth0`) is
/// dropped. Unlike dart:io, `FE80::` in capitals counts as link-local too.
String unescapeScopedHost(String host) {
  final int percent = host.indexOf('%');
  if (percent < 0) return host;
  if (!_looksLinkLocal(host)) {
    throw FormatException(
        '$host is not a valid link-local address but contains %. Scope id '
        'should be used as part of link-local address.',
        host,
        percent);
  }
  if (host.startsWith('25', percent + 1)) {
    return host.replaceRange(percent + 1, percent + 3, '');
  }
  return host;
}

/// dart:io's test: at least 7 characters ('fe80::1'), starting fe8, fe9,
/// fea or feb.
bool _looksLinkLocal(String host) {
  if (host.length < 7) return false;
  final String start = host.substring(0, 3).toLowerCase();
  return start == 'fe8' || start == 'fe9' || start == 'fea' || start == 'feb';
}

// ---- the OS's interface names ------------------------------------------------

typedef _IfNameToIndexC = Uint32 Function(Pointer<Utf8> name);
typedef _IfNameToIndexDart = int Function(Pointer<Utf8> name);
typedef _IfIndexToNameC = Pointer<Utf8> Function(
    Uint32 index, Pointer<Utf8> name);
typedef _IfIndexToNameDart = Pointer<Utf8> Function(
    int index, Pointer<Utf8> name);

/// Room for an interface name: IF_NAMESIZE is 16 on Linux and macOS (with
/// the terminating NUL).
const int _interfaceNameBytes = 64;

/// Where if_nametoindex / if_indextoname live: the C library, already in
/// the process, on Linux, Android, macOS and iOS; iphlpapi.dll on Windows
/// (the only one of the two it has is if_nametoindex).
final DynamicLibrary _interfaceLibrary = Platform.isWindows
    ? DynamicLibrary.open('iphlpapi.dll')
    : DynamicLibrary.process();

final _IfNameToIndexDart _ifNameToIndex = _interfaceLibrary
    .lookupFunction<_IfNameToIndexC, _IfNameToIndexDart>('if_nametoindex');

final _IfIndexToNameDart _ifIndexToName = _interfaceLibrary
    .lookupFunction<_IfIndexToNameC, _IfIndexToNameDart>('if_indextoname');

/// The OS's index of the interface [name] (if_nametoindex), 0 for none.
int interfaceIndexOf(String name) {
  final Pointer<Utf8> cName = name.toNativeUtf8(allocator: calloc);
  try {
    return _ifNameToIndex(cName);
  } finally {
    calloc.free(cName);
  }
}

/// The OS's name of interface [index] (if_indextoname), or null. Always null
/// on Windows, whose addresses print their scope as a number.
String? interfaceNameOf(int index) {
  if (Platform.isWindows) return null;
  final Pointer<Utf8> buffer = calloc<Uint8>(_interfaceNameBytes).cast<Utf8>();
  try {
    final Pointer<Utf8> name = _ifIndexToName(index, buffer);
    return name.address == 0 ? null : name.toDartString();
  } finally {
    calloc.free(buffer);
  }
}
