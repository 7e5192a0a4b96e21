/**
 * Live inspection: the running actor system, sanitised, for the Stately
 * inspector (a WebSocket relay on a loopback address) and for post-mortems
 * (JSON lines in a file).
 *
 * Why not @statelyai/inspect's own pieces: its server listens on every
 * interface with no authentication and relays whatever any client sends; its
 * `sanitizeContext` hook never sees `snapshot.error` (a failed worker's error
 * carries the job) and its per-event timer serialises snapshots late (the
 * reader mutates its lists in place). So the relay here emits the same wire
 * messages (checked against the library by test/inspect/protocol.test.ts),
 * built from a whole-message sanitiser, serialised when the event happens.
 *
 * Sanitising: a job's arguments and results never leave the process. Every
 * `data`/`args`/`payload` becomes `[payload: N bytes]` (plus the envelope's
 * command and job id, read from its head), every result `record` becomes
 * `[result: N bytes]`, errors become { name, message, stack, code, workerId,
 * command, jobId, cause } with URL passwords redacted, a thrown non-Error
 * object becomes `[thrown Object]`, functions are dropped and actor refs
 * become their ids.
 */
export {
  INSPECT_PROTOCOL_VERSION,
  sanitizeValue,
  sanitizeEvent,
  sanitizeSnapshot,
  sanitizeInspectionEvent,
  actorName,
  type InspectorMessage,
} from './sanitize.js';
export { DEFAULT_INSPECT_PORT, startInspector, type InspectorOptions, type InspectorStats, type InspectorRelay } from './relay.js';
export { inspectLogLine, createInspectLog, type InspectLogOptions, type InspectLog } from './log.js';
