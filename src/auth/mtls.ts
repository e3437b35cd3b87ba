/**
 * mTLS identity: the client certificate (chain-verified at the handshake by the runtime and by
 * tls/client-trust.ts) names a configured peer by CN, DNS SAN or URI SAN, and matches the peer's
 * pins when it has any. The names come from the certificate's DER (tls/x509.ts), not from a
 * runtime's formatting. The match is memoised per connection, so a keep-alive connection pays
 * for it once.
 */
import type { Config, PeerConfig } from '../config/schema.ts';
import type { PeerCertificateInfo, RequestContext } from '../pipeline/context.ts';
import { Rejection, type Reason } from '../pipeline/reasons.ts';
import type { Stage } from '../pipeline/stage.ts';
import { agreeIdentity } from './identity.ts';

type Match = { readonly pop: string } | { readonly reason: Reason; readonly detail: string };

export interface PeerIndex {
  match(cert: PeerCertificateInfo): Match;
}

export function createPeerIndex(peers: readonly PeerConfig[]): PeerIndex {
  const byCn = new Map<string, PeerConfig>();
  const byDns = new Map<string, PeerConfig>();
  const byUri = new Map<string, PeerConfig>();
  for (const peer of peers) {
    if (peer.cert.cn !== undefined) byCn.set(peer.cert.cn, peer);
    if (peer.cert.dns_san !== undefined) byDns.set(peer.cert.dns_san.toLowerCase(), peer);
    if (peer.cert.uri_san !== undefined) byUri.set(peer.cert.uri_san, peer);
  }
  return {
    match(cert) {
      const found = new Set<PeerConfig>();
      // A certificate with several CNs is ambiguous by itself: its CN names nobody.
      if (cert.commonNames.length === 1) {
        const p = byCn.get(cert.commonNames[0]!);
        if (p) found.add(p);
      }
      for (const dns of cert.dnsSans) {
        const p = byDns.get(dns.toLowerCase());
        if (p) found.add(p);
      }
      for (const uri of cert.uriSans) {
        const p = byUri.get(uri);
        if (p) found.add(p);
      }
      if (found.size === 0) return { reason: 'AUTH_PEER_UNKNOWN', detail: 'certificate names no configured peer' };
      if (found.size > 1) {
        return { reason: 'AUTH_PEER_AMBIGUOUS', detail: `certificate names ${[...found].map((p) => p.id).join(', ')}` };
      }
      const peer = [...found][0]!;
      if (peer.cert_sha256.length > 0 && !peer.cert_sha256.includes(cert.sha256)) {
        return { reason: 'AUTH_CERT_PIN_MISMATCH', detail: `certificate of ${peer.id} matches none of its pins` };
      }
      return { pop: peer.id };
    },
  };
}

/**
 * The client certificate's identity. Runs whenever the connection has a verified certificate,
 * whatever `auth.methods` says: a certificate that verifies names a POP, and every credential of
 * the request must name the same one (a verified certificate of POP A with a valid token of POP
 * B is AUTH_IDENTITY_MISMATCH, not a request of B). With `mtls` in `auth.methods` a certificate
 * is required (the TLS gate refuses a connection without one; this is the backstop).
 */
export function createMtlsStage(config: Pick<Config, 'peers' | 'auth'>): Stage {
  const index = createPeerIndex(config.peers);
  const required = config.auth.methods.includes('mtls');
  const stage: Stage = {
    name: 'mtls',
    // Without mtls in auth.methods a certificate is optional, so the POP comes from another credential.
    provides: required ? ['pop'] : [],
    run(ctx: RequestContext) {
      const cert = ctx.conn.peer;
      if (!cert) {
        if (required) throw new Rejection('TLS_CLIENT_CERT_MISSING', 'no verified client certificate on the connection');
        return;
      }
      ctx.credentials.push('mtls');
      // Memoised per connection and per stage instance: a config reload builds a new stage, so
      // a pin added or a peer removed applies to the next request of an open connection.
      let match = ctx.conn.memo.get(stage) as Match | undefined;
      if (match === undefined) {
        match = index.match(cert);
        ctx.conn.memo.set(stage, match);
      }
      // The certificate is the connection's: every later request on it would fail the same way
      // (a peer removed or a pin changed by a reload too), so the connection is closed.
      if ('reason' in match) throw new Rejection(match.reason, match.detail, { closeConnection: true });
      agreeIdentity(ctx, match.pop, 'mtls');
    },
  };
  return stage;
}
