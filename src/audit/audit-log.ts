/**
 * Where audit events go: NDJSON through pino, to stdout (default, for a node-level log shipper)
 * and/or appended to `audit.file`. Alerts are written at level warn and carry event.kind "alert";
 * every line has `event.dataset: replguard.audit` (the operational log's is `replguard.operational`).
 *
 * Writes are asynchronous (SonicBoom buffers and writes off the request's path), and batched:
 * an event waits at most `AUDIT_BATCH_MS` for the events after it, and they go to each
 * destination in one write. Each write is a round trip through the thread pool that costs far
 * more than the bytes (about 50 µs of CPU on the bench's machine, issue 22 part 2), so one per
 * event was a large part of a forwarded request's cost at a steady load. `flush()` writes out
 * everything queued synchronously and is called before exit, and so does the process's exit,
 * so no finished request's event is lost.
 */
import { closeSync, openSync } from 'node:fs';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import pino, { type DestinationStream, type Logger } from 'pino';
import { ConfigError } from '../config/errors.ts';
import type { Config } from '../config/schema.ts';
import { createJsonLogger } from '../log/json-logger.ts';
import type { AuditEvent } from './event.ts';
import type { SignerAuditEvent } from './signer-event.ts';

export interface AuditLog {
  /** Resolves once every destination is open; serve before it and a flush could find nothing to write to. */
  ready(): Promise<void>;
  write(event: AuditEvent | SignerAuditEvent): void;
  /**
   * Writes out whatever is queued, synchronously. A write already handed to the thread pool is
   * not waited for: before exit, use close().
   */
  flush(): void;
  /**
   * Ends every destination once the writes in flight and queued are done (at most `timeoutMs`),
   * so that exiting right after loses no event and reorders none. A later write goes nowhere
   * (and is reported through onError) rather than throwing.
   */
  close(timeoutMs?: number): Promise<void>;
  /**
   * Reopens `audit.file` by name (after logrotate renamed it); resolves once the new file is open.
   * Until then events still go to the renamed file: none is lost. Nothing to do without a file.
   */
  reopen(): Promise<void>;
}

export interface AuditOptions {
  /** Instead of the configured destinations (in-process tests). */
  readonly stream?: DestinationStream;
  /** A destination failed to write or reopen (the event is still written to the others). */
  readonly onError?: (err: Error, destination: 'stdout' | 'file') => void;
}

/**
 * Longest an event waits to be written with the ones after it, in milliseconds (5): the
 * destinations get at most one write per batch.
 */
export const AUDIT_BATCH_MS = 5;

/** Mode of a newly created audit file: the owner writes, a log shipper in the group reads. */
const AUDIT_FILE_MODE = 0o640;

type SonicBoom = ReturnType<typeof pino.destination>;

/** What each open audit log writes out when the process exits (one 'exit' listener for all). */
const exitWriters = new Set<() => void>();
let exitListening = false;
function atExit(write: () => void): void {
  if (!exitListening) {
    exitListening = true;
    process.once('exit', () => {
      for (const w of exitWriters) w();
    });
  }
  exitWriters.add(write);
}

/** SonicBoom sets `fd` once the file is open (its type declarations leave it out). */
const isOpen = (s: SonicBoom) => (s as unknown as { fd: number }).fd >= 0;

export function createAuditLog(settings: Readonly<Pick<Config['audit'], 'stdout' | 'file'>> = { stdout: true }, options: AuditOptions = {}): AuditLog {
  // pino's own first 'error' listener re-emits the error it does not handle (all but EPIPE), so
  // the first error would reach us twice.
  const reportOnce = (destination: 'stdout' | 'file') => {
    let last: Error | undefined;
    return (err: Error) => {
      if (err === last) return;
      last = err;
      options.onError?.(err, destination);
    };
  };
  const sonics: SonicBoom[] = [];
  let file: SonicBoom | undefined;
  if (!options.stream) {
    if (settings.stdout) {
      const out = pino.destination({ dest: 1, sync: false, minLength: 0 });
      out.on('error', reportOnce('stdout'));
      sonics.push(out);
    }
    if (settings.file !== undefined) {
      // Opened once synchronously so that a file we cannot create fails at start-up (exit 2),
      // not as a lost event later.
      try {
        closeSync(openSync(settings.file, 'a', AUDIT_FILE_MODE));
      } catch (err) {
        throw new ConfigError([{ path: 'audit.file', message: `${settings.file} cannot be opened for appending: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
      }
      file = pino.destination({ dest: settings.file, sync: false, minLength: 0, append: true, mkdir: false, mode: AUDIT_FILE_MODE });
      file.on('error', reportOnce('file'));
      sonics.push(file);
    }
  }
  // The configured destinations get the lines in batches (every line to each, in order); a
  // test's stream gets each line as it is written.
  let queued: string[] = [];
  let batchTimer: ReturnType<typeof setTimeout> | undefined;
  const takeQueued = (): string | undefined => {
    if (batchTimer !== undefined) clearTimeout(batchTimer);
    batchTimer = undefined;
    if (queued.length === 0) return undefined;
    const chunk = queued.length === 1 ? queued[0]! : queued.join('');
    queued = [];
    return chunk;
  };
  const writeQueued = () => {
    const chunk = takeQueued();
    if (chunk !== undefined) for (const s of sonics) s.write(chunk);
  };
  /**
   * The queued batch, and what each destination still buffers, written before returning (flush()
   * and exit). A SonicBoom opened `sync: false` hands whatever it is given to the thread pool at
   * once, where flushSync() no longer reaches it: the batch would be written after flush()
   * returned, or lost at exit. So the destination writes in its synchronous mode for this one
   * batch (its `sync` option, read at each write). A write already in the thread pool from an
   * earlier batch is not waited for.
   */
  const writeQueuedNow = () => {
    const chunk = takeQueued();
    for (const s of sonics) {
      const mode = s as unknown as { sync: boolean };
      const wasSync = mode.sync;
      mode.sync = true;
      try {
        if (chunk !== undefined) s.write(chunk);
        s.flushSync();
      } catch {
        // Not open yet (the batch stays in its buffer until it is) or already closed.
      } finally {
        mode.sync = wasSync;
      }
    }
  };
  const batched: DestinationStream = {
    write(line: string) {
      queued.push(line);
      // unref: a pending batch never keeps the process alive; exit writes it (below).
      batchTimer ??= setTimeout(writeQueued, AUDIT_BATCH_MS).unref();
    },
  };
  // pino flushes its SonicBoom destinations on exit; the batch still queued goes out first.
  const writeAllAtExit = writeQueuedNow;
  if (sonics.length > 0) atExit(writeAllAtExit);
  const destination = options.stream ?? batched;
  const logger: Logger = createJsonLogger({ type: 'audit' }, destination);
  const opened = Promise.all(sonics.map((s) => (isOpen(s) ? undefined : new Promise<void>((resolve, reject) => {
    s.once('ready', () => resolve());
    s.once('error', reject);
  }))));
  opened.catch(() => undefined); // reported by ready() to whoever waits; never an unhandled rejection
  let closed = false;
  return {
    async ready() {
      await opened;
    },
    write(event) {
      if (closed) {
        options.onError?.(new Error('audit event written after the audit log was closed'), file ? 'file' : 'stdout');
        return;
      }
      // Alerts, and a signer's request that finally failed (the primary got an error), at warn.
      const failedSend = event.event.action === 'replication-send' && event.event.outcome === 'failure' && event.replguard !== undefined && 'final' in event.replguard && event.replguard.final && event.replguard.attempt > 0;
      if (event.event.kind === 'alert' || failedSend) logger.warn(event);
      else logger.info(event);
    },
    async close(timeoutMs = 5000) {
      closed = true;
      writeQueued();
      exitWriters.delete(writeAllAtExit);
      await Promise.all(sonics.map((s) => new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        s.once('close', done);
        s.once('error', done);
        s.end();
      })));
    },
    flush() {
      writeQueuedNow();
    },
    async reopen() {
      const target = file;
      if (!target) return;
      // What was written before the signal goes to the renamed file.
      writeQueued();
      await new Promise<void>((resolve, reject) => {
        const reopened = () => {
          target.off('error', failed);
          resolve();
        };
        const failed = (err: Error) => {
          target.off('ready', reopened);
          reject(err);
        };
        target.once('ready', reopened);
        target.once('error', failed);
        target.reopen();
      });
    },
  };
}
