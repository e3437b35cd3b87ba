// How the flood scenario counts (lib/flood.mjs, lib/flood-client.mjs): pure functions, no
// imports, so that test/bench/flood-stats.test.ts loads nothing else.

/** How an attempt that ended in a socket error is counted. */
export function classifyFloodError(err, secured) {
  const code = err?.code ?? '';
  if (code.startsWith('ERR_SSL_')) return secured ? 'tls-alert-after-handshake' : 'tls-alert';
  if (code === 'ECONNRESET' || code === 'EPIPE') return secured ? 'reset-after-handshake' : 'reset-in-handshake';
  if (code === 'ECONNREFUSED') return 'connect-refused';
  if (code === 'EADDRNOTAVAIL') return 'no-source-address';
  return `error-${code || 'other'}`;
}

/** An outcome that means the flood got through: a 2xx answer. */
export const isLetThrough = (outcome) => /^http-2\d\d$/.test(outcome);
/** An outcome that is not a refusal: no answer in time, or the generator could not even connect. */
const isUnanswered = (outcome) => outcome.startsWith('timeout') || outcome === 'connect-refused' || outcome === 'no-source-address';

/** Counters between two snapshots of flood-client.mjs, as rates over the window. */
export function floodWindow(before, after) {
  const seconds = (after.atMs - before.atMs) / 1000;
  const kinds = {};
  let refused = 0;
  let letThrough = 0;
  for (const [name, a] of Object.entries(after.kinds)) {
    const b = before.kinds[name] ?? { attempts: 0, skipped: 0, handshakes: 0, outcomes: {} };
    const outcomes = {};
    for (const [o, n] of Object.entries(a.outcomes)) {
      const d = n - (b.outcomes[o] ?? 0);
      if (d > 0) outcomes[o] = d;
    }
    const sum = (pred) => Object.entries(outcomes).filter(([o]) => pred(o)).reduce((s, [, n]) => s + n, 0);
    const k = {
      attempts: a.attempts - b.attempts,
      skipped: a.skipped - b.skipped,
      handshakes: a.handshakes - b.handshakes,
      refused: sum((o) => !isLetThrough(o) && !isUnanswered(o)),
      letThrough: sum(isLetThrough),
      unanswered: sum(isUnanswered),
      outcomes,
    };
    k.refusedPerS = seconds > 0 ? k.refused / seconds : 0;
    k.attemptsPerS = seconds > 0 ? k.attempts / seconds : 0;
    kinds[name] = k;
    refused += k.refused;
    letThrough += k.letThrough;
  }
  return { seconds, kinds, refused, refusedPerS: seconds > 0 ? refused / seconds : 0, letThrough };
}

/**
 * The legitimate POP's share of successful requests in a wrk summary: 2xx over every request
 * that got an answer plus every socket error and timeout (each a request that did not succeed).
 */
export function legitSuccess(stats) {
  if (!stats) return null;
  const ok = stats.requests - stats.err_status;
  const tried = stats.requests + stats.err_connect + stats.err_read + stats.err_write + stats.err_timeout;
  return tried > 0 ? ok / tried : null;
}

/** "no-cert 50/s: tls-alert 498" style cell for one kind of a flood window. */
export function describeKind(k) {
  const top = Object.entries(k.outcomes).sort((x, y) => y[1] - x[1]).map(([o, n]) => `${o} ${n}`).join(', ');
  return `${k.refusedPerS.toFixed(0)}/s refused (${top || 'nothing'})${k.letThrough ? `, ${k.letThrough} LET THROUGH` : ''}${k.skipped ? `, ${k.skipped} not sent (cap)` : ''}`;
}
