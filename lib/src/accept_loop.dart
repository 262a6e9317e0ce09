// The accept loop of ZigServerSocket, kept apart from the engine so that a
// test can drive it with refusals the engine cannot be made to produce on
// demand (an accept refused at once because the engine is out of memory).

import 'dart:async';
import 'dart:math' as math;

/// How long [runAcceptLoop] waits after the [failures]-th accept failure in a
/// row before it tries again: 1, 2, 4, ... ms, at most 1 s.
Duration acceptRetryDelay(int failures) {
  assert(failures >= 1);
  return Duration(milliseconds: math.min(1000, 1 << math.min(failures - 1, 10)));
}

/// Accepts while [wanted] holds and hands each result to [onAccepted].
///
/// An accept the engine refuses at once fails its future without a trip
/// through the event loop, so retrying straight away would spin through
/// microtasks and starve everything else. Therefore, after a failure:
///  * once [closed] holds, the error is the cancellation of the accept by
///    the close: it is dropped and the loop ends;
///  * once [alive] no longer holds (the engine lost the listener), the error
///    is passed to [onError], then [onGone] runs and the loop ends;
///  * otherwise the first failure of a run of failures is passed to
///    [onError] (the later ones are not: one refusal, one error event), and
///    the loop waits [retryDelay] on a timer, which lets the event loop run,
///    before it tries again. A successful accept ends the run.
Future<void> runAcceptLoop<T>({
  required Future<T> Function() accept,
  required bool Function() wanted,
  required bool Function() closed,
  required bool Function() alive,
  required void Function(T accepted) onAccepted,
  required void Function(Object error, StackTrace stack) onError,
  required void Function() onGone,
  Duration Function(int failures) retryDelay = acceptRetryDelay,
}) async {
  int failures = 0;
  while (wanted()) {
    final T accepted;
    try {
      accepted = await accept();
    } catch (error, stack) {
      if (closed()) return;
      if (!alive()) {
        onError(error, stack);
        onGone();
        return;
      }
      if (failures == 0) onError(error, stack);
      failures++;
      await Future<void>.delayed(retryDelay(failures));
      continue;
    }
    failures = 0;
    onAccepted(accepted);
  }
}
