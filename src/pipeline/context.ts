/** What the stages share about one connection and one request. Filled in as the pipeline runs. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Reason } from './reasons.ts';

/** The client certificate as read once per TLS connection. */
export interface PeerCertificateInfo {
  /** The subject as an RFC 2253-like string, for the audit log. */
  readonly subject: string;
  /** Every subject CN (normally exactly one). */
  readonly commonNames: readonly string[];
  readonly dnsSans: readonly string[];
  readonly uriSans: readonly string[];
  /** Lowercase hex SHA-256 of the DER certificate. */
  readonly sha256: string;
  readonly notAfterMs: number;
}

/** Per TLS connection, cached on the socket: the peer certificate is read once, not per request. */
export interface ConnectionInfo {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly tlsVersion: string | undefined;
  readonly peer: PeerCertificateInfo | undefined;
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
  /** Response body bytes relayed from the upstream. */
  responseBytes: number;
  /** Set when the outcome was decided outside the pipeline (e.g. a timeout). */
  interruptedBy: Reason | undefined;
}
