/** What the stages share about one connection and one request. Filled in as the pipeline runs. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Reason } from './reasons.ts';

/**
 * The client certificate as read once per TLS connection, from its DER bytes (tls/x509.ts), and
 * only once its chain verified (tls/client-trust.ts and the runtime's own verification).
 */
export interface PeerCertificateInfo {
  /** The subject as text, for the audit log only. */
  readonly subject: string;
  /** Every subject CN (normally exactly one). */
  readonly commonNames: readonly string[];
  readonly dnsSans: readonly string[];
  readonly uriSans: readonly string[];
  /** Lowercase hex SHA-256 of the DER certificate. */
  readonly sha256: string;
  /** The earliest notAfter of the verified path (leaf and issuers). */
  readonly notAfterMs: number;
}

/** Per TLS connection, cached on the socket: the peer certificate is read once, not per request. */
export interface ConnectionInfo {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly tlsVersion: string | undefined;
  /** The verified client certificate; undefined when the client sent none (or it failed: then the connection is closed). */
  readonly peer: PeerCertificateInfo | undefined;
  /**
   * The chain the client presented (DER, leaf first), kept so that the connection can be judged
   * again when the CA bundle or the CRL changes while it is open (tls/connection-stage.ts).
   */
  readonly peerChain: readonly Uint8Array[];
  /** The fingerprint of the client trust (CA bundle and CRLs) the chain was last verified against. */
  verifiedTrust: string | undefined;
  /** Until when (ms) that verification holds without a new check (a notAfter, a CRL's nextUpdate). */
  verifiedUntilMs: number;
  /**
   * True once the connection carried a verified identity (a certificate naming a configured POP,
   * or a request whose credential verified): it no longer counts as unauthenticated
   * (guard/tls-gate.ts caps those per address).
   */
  authenticated: boolean;
  /** Per-connection memo for stages (e.g. the matched POP), keyed by the stage instance. */
  readonly memo: Map<object, unknown>;
  /** The request being processed on this connection, if any. */
  inflight: RequestContext | undefined;
}

export interface RequestContext {
  /** Random per request; sent to the client and the upstream, and logged. */
  readonly id: string;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly conn: ConnectionInfo;
  /** performance.now() at arrival. */
  readonly startedAt: number;
  /** The normalised path, once the route stage has accepted it. */
  path: string | undefined;
  /** The authenticated POP. */
  pop: string | undefined;
  /** Which credentials were checked, in order. */
  readonly credentials: string[];
  /** The request body, once read (bounded by limits.max_body_bytes). */
  body: Buffer | undefined;
  /** Number of `entries` in the JSON body, once parsed. */
  entries: number | undefined;
  /** True once the body met the replication contract (`entries` stays undefined for a body without one). */
  contractMet: true | undefined;
  /** The Standard Webhooks `webhook-id` (the nonce), once well-formed (verified only once webhookTimestamp is set). */
  webhookId: string | undefined;
  /** `webhook-timestamp` in Unix seconds, set only once the signature verified and the nonce was recorded. */
  webhookTimestamp: number | undefined;
  /** The JWT `jti`, once verified. */
  jti: string | undefined;
  /** A short hash identifying the bearer secret or JWT used (never the credential itself). */
  tokenFingerprint: string | undefined;
  /** Milliseconds from forwarding to the upstream's response headers (set by the proxy stage). */
  upstreamMs: number | undefined;
  /** Response body bytes relayed from the upstream (or of the generic body that replaced them). */
  responseBytes: number;
  /** Client header fields the proxy stage did not forward (proxy/headers.ts), once it ran. */
  headersDropped: number | undefined;
  /** The upstream's status and body size, once it answered (audited; the client may get a generic body instead). */
  upstreamStatus: number | undefined;
  upstreamBodyBytes: number;
  /** Set when the outcome was decided outside the pipeline (e.g. a timeout). */
  interruptedBy: Reason | undefined;
  /**
   * The signature stage found this POP's webhook-id already recorded and, with
   * upstream.deduplicate on, left the verdict to the delivery record (proxy/delivery.ts): a retry
   * of the same batch gets its recorded outcome, anything else REPLAY_NONCE_REUSED. Never forwarded.
   */
  nonceReused: boolean;
  /** SHA-256 (hex) identifying the batch for upstream.deduplicate (replay/body-contract.ts), once the contract is met. */
  batchDigest: string | undefined;
  /** Set when the pipeline answered without forwarding (DELIVERY_DUPLICATE): the audit event's reason. */
  answeredAs: Reason | undefined;
  /** The signer's epoch and batch number from a verified webhook-id (replay.sequence), once tracked. */
  batch: { readonly epoch: string; readonly sequence: number } | undefined;
}

/** A connection's info with nothing known yet beyond what is given (one factory for the guard, the signer and the tests). */
export function newConnection(fields: Pick<ConnectionInfo, 'remoteAddress' | 'remotePort'> & Partial<Pick<ConnectionInfo, 'tlsVersion' | 'peer' | 'peerChain' | 'verifiedTrust' | 'verifiedUntilMs' | 'authenticated'>>): ConnectionInfo {
  return {
    remoteAddress: fields.remoteAddress,
    remotePort: fields.remotePort,
    tlsVersion: fields.tlsVersion,
    peer: fields.peer,
    peerChain: fields.peerChain ?? [],
    verifiedTrust: fields.verifiedTrust,
    verifiedUntilMs: fields.verifiedUntilMs ?? Infinity,
    authenticated: fields.authenticated ?? false,
    memo: new Map(),
    inflight: undefined,
  };
}

/** A request's context before any stage has run (one factory for the guard, the signer and the tests). */
export function newRequestContext(fields: Pick<RequestContext, 'id' | 'req' | 'res' | 'conn' | 'startedAt'> & Partial<Pick<RequestContext, 'pop' | 'path'>>): RequestContext {
  return {
    id: fields.id,
    req: fields.req,
    res: fields.res,
    conn: fields.conn,
    startedAt: fields.startedAt,
    path: fields.path,
    pop: fields.pop,
    credentials: [],
    body: undefined,
    entries: undefined,
    contractMet: undefined,
    webhookId: undefined,
    webhookTimestamp: undefined,
    jti: undefined,
    tokenFingerprint: undefined,
    upstreamMs: undefined,
    responseBytes: 0,
    headersDropped: undefined,
    upstreamStatus: undefined,
    upstreamBodyBytes: 0,
    interruptedBy: undefined,
    nonceReused: false,
    batchDigest: undefined,
    answeredAs: undefined,
    batch: undefined,
  };
}
