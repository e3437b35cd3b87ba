/**
 * The configuration format of the security review's secure example (`replication.yaml`: pop_id,
 * region, role, backup_pop, auth.method with mtls_* or token_file, replication.*, security.*):
 * where each of its keys went in replguard, for check-config's hints (config/load.ts) and for
 * `replguard migrate-config` (cli/migrate-config.ts), which writes the equivalent config.
 */
import { formatDuration } from './print.ts';
import type { Role } from './keys.ts';

/** check-config's message for a key of the old format, by role and key path: where it moved. */
export const LEGACY_KEY_HINTS: Record<Role, Record<string, string>> = {
  backup: {
    region: "a key of the review's replication.yaml; replguard has no region (it is not used for any decision): remove it. `replguard migrate-config FILE` converts the whole file",
    backup_pop: "a key of the review's replication.yaml: a backup never sends replication on (cascade prevention), so the guard has no backup_pop: remove it. `replguard migrate-config FILE` converts the whole file",
    'auth.method': 'moved to auth.methods, a list: e.g. [mtls, signature] (`replguard migrate-config FILE` converts the whole file)',
    'auth.mtls_cert': "moved to tls.cert_file (the guard's server certificate)",
    'auth.mtls_key': 'moved to tls.key_file',
    'auth.mtls_ca': 'moved to tls.client_ca_file (the CA that client certificates must chain to)',
    'auth.token_file': 'moved to peers[].token_files: one list of secret files per authorised POP',
    'auth.token_rotation_interval': 'no equivalent: token files are re-read on change, on SIGHUP and every auth.reload_interval, and every listed file is valid at once, so a rotation adds the new file, then removes the old one: remove it',
    replication: "a section of the review's replication.yaml: max_request_age moved to replay.max_age (with signature in auth.methods); batch_size, max_retries and request_timeout are the primary's (the signer's retry.max_retries, backup.timeout): remove it. `replguard migrate-config FILE` converts the whole file",
    security: "a section of the review's replication.yaml: audit_log moved to audit.file, rate_limit_per_minute to limits.rate_per_minute, ban_after_failures to limits.ban_after_failures, ban_duration to limits.ban_duration. `replguard migrate-config FILE` converts the whole file",
  },
  primary: {
    region: "a key of the review's replication.yaml; replguard has no region: remove it. `replguard migrate-config FILE` converts the whole file",
    backup_pop: 'moved to backup: (backup.id, backup.url; backup.ca_file for the CA its certificate must chain to). `replguard migrate-config FILE` converts the whole file',
    auth: "the signer's credentials moved: mtls_cert/mtls_key to client_tls.cert_file/key_file, mtls_ca to backup.ca_file, token_file to credentials.token_file; method has no equivalent (what is configured is sent). `replguard migrate-config FILE` converts the whole file",
    replication: 'max_retries moved to retry.max_retries, request_timeout to backup.timeout (with a unit, e.g. 30s); max_request_age is the guard\'s replay.max_age; batch_size has no equivalent (the signer sends the primary\'s batches as they are). `replguard migrate-config FILE` converts the whole file',
    security: "rate and ban limits are the guard's (limits.rate_per_minute, limits.ban_after_failures, limits.ban_duration in its role: backup config); the signer writes its audit events to stdout (audit_log has no equivalent here). `replguard migrate-config FILE` converts the whole file",
  },
};

/** What a migration made: the new config (plain data) and a note for each key that did not carry over as it was. */
export interface Migration {
  readonly role: Role;
  readonly config: Record<string, unknown>;
  /** `key: what became of it`, for every key without a one-to-one equivalent, and for what replguard needs that the old file had not. */
  readonly notes: readonly string[];
}

type Doc = Record<string, unknown>;
const isObject = (v: unknown): v is Doc => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Where the review's keys live when its example is copied as printed there (its indentation lost): each back under its section. */
const FLAT_SECTIONS: Record<string, string[]> = {
  backup_pop: ['id', 'url'],
  auth: ['method', 'mtls_cert', 'mtls_key', 'mtls_ca', 'token_file', 'token_rotation_interval'],
  replication: ['batch_size', 'max_retries', 'request_timeout', 'max_request_age'],
  security: ['audit_log', 'rate_limit_per_minute', 'ban_after_failures', 'ban_duration'],
};

function nest(raw: Doc): Doc {
  const out: Doc = { ...raw };
  for (const [section, keys] of Object.entries(FLAT_SECTIONS)) {
    const moved = keys.filter((k) => k in out);
    if (moved.length === 0) continue;
    const target: Doc = isObject(out[section]) ? { ...(out[section] as Doc) } : {};
    for (const k of moved) {
      target[k] = out[k];
      delete out[k];
    }
    out[section] = target;
  }
  return out;
}

/** Seconds (the old format's unit) as a replguard duration, or the text as written. */
function seconds(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return formatDuration(Math.round(value * 1000));
  if (typeof value === 'string' && value.trim() !== '') return /^\d+$/.test(value.trim()) ? formatDuration(Number(value) * 1000) : value.trim();
  return undefined;
}

/**
 * The replguard config for the old file's role: the guard for `role: backup`, the signer for
 * `role: primary`. Throws an Error naming the problem when the file is not of that format.
 */
export function migrateLegacyConfig(input: unknown): Migration {
  if (!isObject(input)) throw new Error('not a YAML mapping');
  const raw = nest(input);
  const role = raw.role;
  if (role !== 'primary' && role !== 'backup') throw new Error(`role must be "primary" or "backup" (it is ${JSON.stringify(role)}); the role comes from the file only`);
  if (typeof raw.pop_id !== 'string' || raw.pop_id === '') throw new Error('pop_id is missing');
  const known = new Set(['pop_id', 'region', 'role', ...Object.keys(FLAT_SECTIONS)]);
  const notes: string[] = [];
  for (const key of Object.keys(raw)) if (!known.has(key)) notes.push(`${key}: not a key of the review's format; left out`);
  if (raw.region !== undefined) notes.push(`region (${String(raw.region)}): no equivalent; replguard makes no decision by region`);
  const auth = isObject(raw.auth) ? raw.auth : {};
  const replication = isObject(raw.replication) ? raw.replication : {};
  const security = isObject(raw.security) ? raw.security : {};
  const method = typeof auth.method === 'string' ? auth.method : undefined;
  if (method !== undefined && method !== 'mtls' && method !== 'bearer') notes.push(`auth.method "${method}": not mtls or bearer; treated as mtls`);
  const bearer = method === 'bearer';
  if (auth.token_rotation_interval !== undefined) {
    notes.push('auth.token_rotation_interval: no equivalent; token files are re-read on change, SIGHUP and every reload interval, and several are valid at once, so rotating is writing a new file (replguard gen-token) and later removing the old one');
  }
  if (replication.batch_size !== undefined) notes.push("replication.batch_size: no equivalent; batches are the primary's, the signer sends each as it comes");
  const pop = raw.pop_id;

  if (role === 'primary') {
    const backupPop = isObject(raw.backup_pop) ? raw.backup_pop : {};
    const config: Doc = { pop_id: pop, role: 'primary' };
    const backup: Doc = {
      id: typeof backupPop.id === 'string' ? backupPop.id : 'BACKUP-POP-ID',
      url: typeof backupPop.url === 'string' ? backupPop.url : 'https://BACKUP-HOST:8443',
      ca_file: typeof auth.mtls_ca === 'string' ? auth.mtls_ca : '/etc/replguard/tls/ca.crt',
    };
    if (typeof backupPop.id !== 'string' || typeof backupPop.url !== 'string') notes.push('backup.id, backup.url: backup_pop.id and backup_pop.url were missing; fill them in');
    if (typeof auth.mtls_ca !== 'string') notes.push("backup.ca_file: required (the guard's certificate is always verified); auth.mtls_ca was missing, so it names /etc/replguard/tls/ca.crt: fix the path");
    const timeout = seconds(replication.request_timeout);
    if (timeout !== undefined) backup.timeout = timeout;
    config.backup = backup;
    if (!bearer || typeof auth.mtls_cert === 'string') {
      if (typeof auth.mtls_cert === 'string' && typeof auth.mtls_key === 'string') config.client_tls = { cert_file: auth.mtls_cert, key_file: auth.mtls_key };
      else if (!bearer) notes.push('client_tls: auth.method is mtls but mtls_cert or mtls_key is missing; add client_tls.cert_file and key_file');
    }
    if (typeof auth.token_file === 'string') config.credentials = { token_file: auth.token_file };
    else if (bearer) notes.push('credentials.token_file: auth.method is bearer but token_file is missing; add it (replguard gen-token --out FILE)');
    // Relative: beside the new config file (relative paths start at the config's folder).
    config.signing_keys = [`${pop}-signing.key`];
    notes.push(`signing_keys: new and required: every request is signed (Standard Webhooks), which the review's format had no key for; in the new config's folder: \`openssl genpkey -algorithm ed25519 -out ${pop}-signing.key && chmod 600 ${pop}-signing.key\`, and give its public key (\`openssl pkey -in ${pop}-signing.key -pubout\`) to the guard's peers[].signing_keys`);
    if (replication.max_retries !== undefined) {
      const n = Number(replication.max_retries);
      const retries = Number.isInteger(n) ? Math.min(Math.max(n, 0), 5) : 5;
      config.retry = { max_retries: retries };
      if (retries !== n) notes.push(`replication.max_retries ${String(replication.max_retries)}: replguard retries 0 to 5 times (1s, 5s, 25s, 125s, 625s); set to ${retries}`);
    }
    if (replication.max_request_age !== undefined) notes.push(`replication.max_request_age: the guard's replay.max_age (${seconds(replication.max_request_age) ?? String(replication.max_request_age)}); set it in the guard's config`);
    for (const key of ['rate_limit_per_minute', 'ban_after_failures', 'ban_duration'] as const) {
      if (security[key] !== undefined) notes.push(`security.${key}: the guard's limits (limits.${key === 'rate_limit_per_minute' ? 'rate_per_minute' : key}); set it in the guard's config`);
    }
    if (security.audit_log !== undefined) notes.push('security.audit_log: the signer writes its audit events to stdout, one JSON line each; ship them from there');
    return { role, config, notes };
  }

  // role: backup, the guard.
  const config: Doc = { pop_id: pop, role: 'backup' };
  if (raw.backup_pop !== undefined) notes.push('backup_pop: left out; a backup never sends replication on (cascade prevention)');
  config.tls = {
    cert_file: typeof auth.mtls_cert === 'string' ? auth.mtls_cert : '/etc/replguard/tls/server.crt',
    key_file: typeof auth.mtls_key === 'string' ? auth.mtls_key : '/etc/replguard/tls/server.key',
    client_ca_file: typeof auth.mtls_ca === 'string' ? auth.mtls_ca : '/etc/replguard/tls/ca.crt',
  };
  if (typeof auth.mtls_cert !== 'string' || typeof auth.mtls_key !== 'string' || typeof auth.mtls_ca !== 'string') notes.push('tls: the guard always terminates TLS; the missing mtls_* paths were filled with /etc/replguard/tls/...: fix them');
  config.upstream = { url: 'http://127.0.0.1:8080' };
  notes.push('upstream.url: new and required: the unmodified backup service on loopback; http://127.0.0.1:8080 is a guess: fix it');
  config.routes = [{ method: 'POST', path: '/api/replication/apply' }];
  config.auth = { methods: [bearer ? 'bearer' : 'mtls', 'signature'] };
  notes.push('auth.methods: signature added: the signer signs every request (Standard Webhooks); list each peer\'s key in peers[].signing_keys');
  config.peers = [];
  notes.push(`peers: new: the authorised source POPs, none yet (every request is refused until you add them), e.g. { id: calgary-01, cert: { cn: calgary-01 }${bearer ? ', token_files: [...]' : ''}, signing_keys: [/etc/replguard/peers/calgary-01-signing.pub] }`);
  if (typeof auth.token_file === 'string') notes.push(`auth.token_file ${auth.token_file}: goes to the token_files of the peer it belongs to (one list per POP)`);
  const maxAge = seconds(replication.max_request_age);
  if (maxAge !== undefined) config.replay = { max_age: maxAge };
  for (const key of ['max_retries', 'request_timeout'] as const) {
    if (replication[key] !== undefined) notes.push(`replication.${key}: the primary's (the signer's ${key === 'max_retries' ? 'retry.max_retries' : 'backup.timeout'}); no equivalent on the guard`);
  }
  const limits: Doc = {};
  if (security.rate_limit_per_minute !== undefined) limits.rate_per_minute = security.rate_limit_per_minute;
  if (security.ban_after_failures !== undefined) limits.ban_after_failures = security.ban_after_failures;
  const ban = seconds(security.ban_duration);
  if (ban !== undefined) limits.ban_duration = ban;
  if (Object.keys(limits).length > 0) config.limits = limits;
  if (typeof security.audit_log === 'string') config.audit = { stdout: true, file: security.audit_log };
  return { role, config, notes };
}
