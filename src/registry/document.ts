/**
 * The POP registry document (docs/control-plane.md): what the operator's control plane says
 * about every POP, as the payload of a JWS. One schema, strict like the config: an unknown
 * member is refused, so that a field this version does not enforce is never silently ignored.
 */
import { z } from 'zod';
import { popIdSchema, sha256Pin } from '../config/fields.ts';

/** The JWS `typ` of a registry (RFC 8725 section 3.11: explicit typing, so a JWT is never read as one). */
export const REGISTRY_TYP = 'replguard-registry+jws';
/** The payload's `format`: a document of another format is refused, never guessed at. */
export const REGISTRY_FORMAT = 1;
/** The algorithms a registry may be signed with. */
export const REGISTRY_ALGORITHMS = ['EdDSA', 'ES256'] as const;
export type RegistryAlgorithm = (typeof REGISTRY_ALGORITHMS)[number];

/** Most POPs in one document: a bound on what a verification costs. */
export const MAX_REGISTRY_POPS = 10_000;

// A raw Ed25519 public key in the `whpk_` form of replay/keys.ts: 32 bytes, canonical base64.
const WHPK = /^whpk_[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

const certIdentity = z
  .strictObject({
    cn: z.string().min(1).max(256).optional(),
    dns_san: z.string().min(1).max(256).optional(),
    uri_san: z.string().min(1).max(2048).optional(),
  })
  .refine((c) => [c.cn, c.dns_san, c.uri_san].filter((v) => v !== undefined).length === 1, {
    message: 'name exactly one of cn, dns_san or uri_san',
  });

const signatureKey = z.string().superRefine((key, ctx) => {
  if (key.startsWith('whsec_')) ctx.addIssue({ code: 'custom', message: 'an HMAC secret (whsec_) never goes in the registry; list Ed25519 public keys (whpk_) only' });
  else if (!WHPK.test(key)) ctx.addIssue({ code: 'custom', message: 'not an Ed25519 public key in the whpk_<base64 of 32 bytes> form' });
});

const popEntry = z.strictObject({
  /** The POP id, as in its `pop_id`. */
  id: popIdSchema,
  /** What the POP runs as: `primary` (the signer) or `backup` (the guard). */
  role: z.enum(['primary', 'backup']),
  /** For a primary: the backups it sends replication to. Empty for a backup. */
  replicates_to: z.array(popIdSchema).max(MAX_REGISTRY_POPS).default([]),
  /** How the POP's client certificate names it (one of CN, DNS SAN, URI SAN / SPIFFE ID). */
  cert: certIdentity,
  /** Optional SHA-256 pins of its certificate. */
  cert_sha256: z.array(sha256Pin).max(16).default([]),
  /** Its request-signature public keys (Standard Webhooks v1a, Ed25519), several during a rotation. */
  signature_keys: z.array(signatureKey).max(16).default([]),
});

const unixSeconds = z.number().int().min(0).max(253_402_300_799);

export const registryPayloadSchema = z
  .strictObject({
    format: z.literal(REGISTRY_FORMAT),
    /** Grows with every document the control plane issues; an older one is a rollback. */
    serial: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    /** Issue time and expiry, Unix seconds. */
    iat: unixSeconds,
    exp: unixSeconds,
    pops: z.array(popEntry).max(MAX_REGISTRY_POPS),
  })
  .superRefine((doc, ctx) => {
    if (doc.exp <= doc.iat) ctx.addIssue({ code: 'custom', path: ['exp'], message: 'exp must be after iat' });
    const roles = new Map<string, 'primary' | 'backup'>();
    doc.pops.forEach((pop, i) => {
      if (roles.has(pop.id)) ctx.addIssue({ code: 'custom', path: ['pops', i, 'id'], message: `POP ${pop.id} is listed twice` });
      roles.set(pop.id, pop.role);
    });
    doc.pops.forEach((pop, i) => {
      if (pop.role === 'backup' && pop.replicates_to.length > 0) {
        ctx.addIssue({ code: 'custom', path: ['pops', i, 'replicates_to'], message: 'a backup replicates to nobody (cascade prevention)' });
      }
      pop.replicates_to.forEach((to, j) => {
        if (roles.get(to) !== 'backup') ctx.addIssue({ code: 'custom', path: ['pops', i, 'replicates_to', j], message: `${to} is not a backup listed in this document` });
      });
    });
  });

/** The registry as written by HQ (before defaults). */
export type RegistryPayloadInput = z.input<typeof registryPayloadSchema>;
export type RegistryPayload = z.output<typeof registryPayloadSchema>;
export type RegistryPop = RegistryPayload['pops'][number];

/** A verified registry, frozen: what a guard or signer holds in force. */
export interface Registry {
  readonly payload: Readonly<RegistryPayload>;
  /** The `kid` of the HQ key that signed it. */
  readonly kid: string;
  readonly alg: RegistryAlgorithm;
  /** SHA-256 (hex) of the JWS as received: two documents with one serial must be the same bytes. */
  readonly digest: string;
  readonly byId: ReadonlyMap<string, Readonly<RegistryPop>>;
}
