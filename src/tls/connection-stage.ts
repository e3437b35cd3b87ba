/**
 * Step 1, for every request: the connection's client certificate is still acceptable NOW.
 * A keep-alive connection was verified at its handshake (guard/tls-gate.ts); when the client
 * CA bundle or the CRL has changed since (a reload), or the verification has run out (a
 * certificate's notAfter, a CRL's nextUpdate), its presented chain is verified again against
 * the trust in force before the request goes on. Refused: the request is refused with the
 * reason (TLS_CLIENT_CERT_REVOKED, _UNTRUSTED, ...; AUTH_CERT_EXPIRED for a certificate that
 * expired while the connection was open) and the connection is closed, so a revocation reaches
 * connections that were already open.
 */
import type { RequestContext } from '../pipeline/context.ts';
import { Rejection } from '../pipeline/reasons.ts';
import type { Stage } from '../pipeline/stage.ts';
import type { ClientTrust } from './client-trust.ts';

export interface ConnectionTrustDeps {
  /** The client trust in force. */
  readonly trust: () => ClientTrust;
  readonly now: () => number;
}

export function createConnectionTrustStage(deps: ConnectionTrustDeps): Stage {
  return {
    name: 'connection-trust',
    run(ctx: RequestContext) {
      const conn = ctx.conn;
      if (conn.peerChain.length === 0) return;
      const trust = deps.trust();
      const now = deps.now();
      if (conn.verifiedTrust === trust.fingerprint && now <= conn.verifiedUntilMs) return;
      const verdict = trust.verify(conn.peerChain, now);
      if (!verdict.ok) {
        // No longer verified: this failure (and anything after it) counts against the address,
        // never against the POP the certificate names (limits/bans.ts connectionPop).
        conn.verifiedTrust = undefined;
        const reason = verdict.reason === 'TLS_CLIENT_CERT_EXPIRED' ? 'AUTH_CERT_EXPIRED' : verdict.reason;
        throw new Rejection(reason, `checked again on an open connection: ${verdict.detail}`, { closeConnection: true });
      }
      conn.verifiedTrust = trust.fingerprint;
      conn.verifiedUntilMs = verdict.validUntilMs;
    },
  };
}
