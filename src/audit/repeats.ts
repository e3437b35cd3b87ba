/**
 * Repeated refusals of one kind from one client, aggregated in the audit trail so that a flood
 * cannot flood the SIEM too: within `audit.repeat_window`, the first refusal of a (reason, key)
 * pair is written at once and the next ones only counted; when the window ends, one event
 * stands for them, with `replguard.repeated` (how many refusals it stands for) and ECS
 * `event.start` / `event.end` (the first and last of them). Nothing is lost: every refusal is
 * still counted in the metrics at once (`count`), and the events' counts add up exactly
 * (1 per plain event, `replguard.repeated` per summary).
 *
 * Only refusals that carry no request (connections cut at accept or at the TLS layer) are
 * aggregated: every HTTP request keeps its own event.
 */
import { LRUCache } from 'lru-cache';
import { entryBound } from '../core/lru.ts';
import type { AuditEvent } from './event.ts';

export interface RepeatSinks {
  /** Counts one refusal (metrics), for every occurrence. */
  count(event: AuditEvent): void;
  /** Writes an event to the audit trail (plain or summary). */
  write(event: AuditEvent): void;
}

export interface RepeatAggregator {
  /** One refusal of `event.event.reason` from `key` (e.g. a client address key). */
  submit(key: string, event: AuditEvent): void;
  /** Writes every pending summary now (shutdown). */
  flush(): void;
  close(): void;
}

interface Pending {
  /** The last refusal suppressed in this window (the summary copies its fields). */
  last: AuditEvent;
  repeated: number;
  firstAt: number;
  lastAt: number;
  /** Distinct client certificates the suppressed refusals presented (bounded). */
  certificates: Set<string>;
  truncated: boolean;
}

/** Most distinct certificate fingerprints one summary lists. */
export const REPEAT_CERTIFICATES_MAX = 16;

function noteCertificate(pending: Pending, event: AuditEvent): void {
  const sha256 = event.tls?.client?.hash?.sha256;
  if (sha256 === undefined || pending.certificates.has(sha256)) return;
  if (pending.certificates.size < REPEAT_CERTIFICATES_MAX) pending.certificates.add(sha256);
  else pending.truncated = true;
}

/** Keys followed at once; evicting one writes its summary first, so nothing is lost. */
const MAX_KEYS = 10_000;

export function createRepeatAggregator(windowMs: number, now: () => number, sinks: RepeatSinks): RepeatAggregator {
  if (windowMs <= 0) {
    return { submit: (_key, event) => { sinks.count(event); sinks.write(event); }, flush: () => undefined, close: () => undefined };
  }
  /** (reason, key) -> when the window of its first written event ends, and what was held since. */
  const windows = new LRUCache<string, { until: number; pending: Pending | undefined }>({
    ...entryBound(MAX_KEYS),
    dispose: (value, _key, reason) => {
      if (reason === 'evict' || reason === 'delete') writeSummary(value.pending);
    },
  });

  function writeSummary(pending: Pending | undefined): void {
    if (!pending) return;
    const event = structuredClone(pending.last);
    event.event.start = new Date(pending.firstAt).toISOString();
    event.event.end = new Date(pending.lastAt).toISOString();
    event.replguard ??= {};
    const r = event.replguard;
    r.repeated = pending.repeated;
    // The summary copies the last refusal's fields; the certificates of the others are listed.
    if (pending.certificates.size > 0) r.repeated_certificates = [...pending.certificates];
    if (pending.truncated) r.repeated_certificates_truncated = true;
    sinks.write(event);
  }

  function sweep(): void {
    const t = now();
    for (const key of [...windows.keys()]) {
      if (windows.peek(key)!.until <= t) windows.delete(key); // dispose writes the summary
    }
  }
  const timer = setInterval(sweep, Math.min(windowMs, 1000)).unref();

  return {
    submit(key, event) {
      sinks.count(event);
      const t = now();
      const id = `${event.event.reason}\u0000${key}`;
      const open = windows.get(id);
      if (open && open.until > t) {
        if (open.pending) {
          open.pending.last = event;
          open.pending.repeated += 1;
          open.pending.lastAt = t;
        } else {
          open.pending = { last: event, repeated: 1, firstAt: t, lastAt: t, certificates: new Set(), truncated: false };
        }
        noteCertificate(open.pending, event);
        return;
      }
      if (open) windows.delete(id);
      windows.set(id, { until: t + windowMs, pending: undefined });
      sinks.write(event);
    },
    flush() {
      windows.clear(); // dispose (reason 'delete') writes every pending summary
    },
    close() {
      clearInterval(timer);
      windows.clear();
    },
  };
}
