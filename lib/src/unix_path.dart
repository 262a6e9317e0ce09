// Unix domain socket paths between dart:io's InternetAddress and the engine
// (tcp.h tcp_listen_unix / tcp_connect_unix / tcp_local_path /
// tcp_remote_path: a path is its bytes, no NUL; an abstract name is a
// leading NUL byte, then the name).
//
// What dart:io does, which this file follows
// (sdk/lib/_internal/vm/bin/socket_patch.dart, runtime/bin/socket_base.cc):
//  * `InternetAddress(path, type: InternetAddressType.unix)` keeps the path
//    as its `address`; the VM hands that String to the OS as a C string,
//    i.e. UTF-8 (`DartUtils::GetStringValue`).
//  * On Linux and Android a path starting with '@' is an abstract name
//    (`SocketAddress::GetUnixDomainSockAddr`): sun_path is zeroed, the
//    '@' becomes the leading NUL, and the address is passed with the full
//    `sizeof(struct sockaddr_un)`, so the name the kernel sees is the text
//    after '@' padded with NUL bytes to fill sun_path. The same padding is
//    done here, so a zig_tcp socket and a dart:io socket on '@name' meet.
//    Elsewhere '@' is an ordinary first character of a file name.
//  * Addresses dart:io makes from the OS (`remoteAddress`) are
//    `InternetAddress(text, type: unix)` of the sun_path text; an unnamed
//    socket's (a connecting client's) is ''. For an abstract name dart:io
//    reads sun_path as a C string and so reports '' as well; this file
//    reports '@name' instead (docs/dart.md lists the difference).
//
// Lives in the library's `src/` and is not exported by
// `package:zig_tcp/zig_tcp.dart`; the tests use it directly.

import 'dart:convert';
import 'dart:io';
import 'dart:typed_data';

/// sun_path's size on the platforms with abstract names (Linux, Android).
const int abstractNameBytes = 108;

/// The marker dart:io uses for an abstract name: `'@name'`.
const String abstractPrefix = '@';

/// Whether the OS has abstract Unix socket names (Linux and Android), so a
/// leading '@' means one, as in dart:io.
bool get abstractNamesSupported => Platform.isLinux || Platform.isAndroid;

/// Whether [address] is a Unix domain socket address.
bool isUnixAddress(Object? address) =>
    address is InternetAddress && address.type == InternetAddressType.unix;

/// Whether [path] names an abstract socket on this OS.
bool isAbstractPath(String path, {bool? abstractNames}) =>
    (abstractNames ?? abstractNamesSupported) &&
    path.startsWith(abstractPrefix);

/// The engine's bytes for the Unix socket path [path] (an
/// `InternetAddress.address` of type unix): its UTF-8, or for an abstract
/// name ('@name' where [abstractNames], default: this OS has them) a NUL
/// byte, the name's UTF-8 and NUL bytes up to [abstractNameBytes], as
/// dart:io passes it. A name too long to pad is passed unpadded, and the
/// engine refuses it if it does not fit (TCP_ERR_PATH_TOO_LONG). Checking
/// length, emptiness and NUL bytes is the engine's job: it answers with a
/// clear code.
Uint8List unixPathBytes(String path, {bool? abstractNames}) {
  if (!isAbstractPath(path, abstractNames: abstractNames)) {
    return utf8.encode(path);
  }
  final Uint8List name = utf8.encode(path.substring(abstractPrefix.length));
  final int length = name.length + 1 <= abstractNameBytes
      ? abstractNameBytes
      : name.length + 1;
  // Zero-filled: the leading NUL and the padding.
  return Uint8List(length)..setRange(1, 1 + name.length, name);
}

/// The path text of the engine's bytes [raw] (tcp_local_path /
/// tcp_remote_path): '' for an unnamed socket, '@' and the name without its
/// NUL padding for an abstract one, else the UTF-8 text (malformed bytes
/// become U+FFFD: an OS path need not be UTF-8).
String unixPathText(Uint8List raw) {
  if (raw.isEmpty) return '';
  if (raw[0] != 0) {
    return utf8.decode(_withoutTrailingNuls(raw, 0), allowMalformed: true);
  }
  final Uint8List name = _withoutTrailingNuls(raw, 1);
  return abstractPrefix + utf8.decode(name, allowMalformed: true);
}

/// The unix [InternetAddress] of the engine's bytes [raw], made as dart:io
/// makes `remoteAddress` (`InternetAddress(text, type: unix)`).
InternetAddress unixAddressFromEngine(Uint8List raw) =>
    InternetAddress(unixPathText(raw), type: InternetAddressType.unix);

Uint8List _withoutTrailingNuls(Uint8List raw, int start) {
  int end = raw.length;
  while (end > start && raw[end - 1] == 0) {
    end--;
  }
  return Uint8List.sublistView(raw, start, end);
}
