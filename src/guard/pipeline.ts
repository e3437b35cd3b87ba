/**
 * The guard's request pipeline, in the order of the README's "What the guard does to each
 * request". Each stage is built once from the config; this file only lists them. Stages never
 * import each other.
 */
import { createAuthorizationStage } from '../auth/authorization.ts';
import { createBearerVerifier, type BearerExpiry, type BearerVerifier } from '../auth/bearer.ts';
import type { CredentialStage } from '../pipeline/credential-stage.ts';
import type { RequestContext } from '../pipeline/context.ts';
import { createJwtCredential } from '../auth/jwt.ts';
import { createMtlsStage } from '../auth/mtls.ts';
import { createUrlTokenStage } from '../auth/url-token.ts';
import type { Config } from '../config/schema.ts';
import { createBodyStage } from '../limits/body.ts';
import { createBanStages } from '../limits/ban-stages.ts';
import type { Bans } from '../limits/bans.ts';
import { createFramingStage } from '../limits/framing.ts';
import { createAddressRateStage, createPopRateStage } from '../limits/rate.ts';
import type { OperationalLog } from '../log/operational.ts';
import type { Limiters } from '../store/create.ts';
import { compose, type Pipeline, type Stage } from '../pipeline/stage.ts';
import { createForwardStage } from '../proxy/forward.ts';
import { createRequestHeadersStage } from '../proxy/request-headers-stage.ts';
import type { ReloadListener, ReloadResult, ReloadTrigger } from '../reload/source.ts';
import { createRegistryStage } from '../registry/registry-stage.ts';
import { createRegistryPeerStage } from '../registry/peer-stage.ts';
import { peerEntries } from '../registry/peers.ts';
import type { ServingState } from '../registry/monitor.ts';
import { createRouteStage } from '../route/route-stage.ts';
import type { ClientTrust } from '../tls/client-trust.ts';
import { createConnectionTrustStage } from '../tls/connection-stage.ts';
import { createBodyContractStage } from '../replay/body-contract.ts';
import { SIGNATURE_HEADERS } from '../replay/signature.ts';
import { createSequenceStage, type SequenceTracker } from '../replay/sequence-stage.ts';
import { createSignatureStage } from '../replay/signature-stage.ts';
import type { DeliveryStore, NonceStore } from '../store/store.ts';

export interface PipelineDeps {
  readonly now: () => number;
  /** Operational log, for reloads of file-backed material. */
  readonly log: OperationalLog;
  /** Nonces of signed requests; required when auth.methods lists signature. */
  readonly nonceStore?: NonceStore;
  /** What was forwarded and answered per batch; required when upstream.deduplicate is set. */
  readonly deliveries?: DeliveryStore;
  /** Each signer epoch's batch numbers (replay/sequence-stage.ts); required when replay.sequence is set. */
  readonly sequences?: SequenceTracker;
  /** Failure counting and bans (limits/bans.ts), built by the guard over the shared state. */
  readonly bans: Bans;
  /** The shared state's rate limiters (store/create.ts). */
  readonly limiters: Pick<Limiters, 'addressRate' | 'popRate'>;
  /** The client trust in force (CA bundle and CRLs), which changes with the TLS material. */
  readonly clientTrust: () => ClientTrust;
  /** Whether the control plane's registry lets this guard serve (when control_plane is set). */
  readonly registry?: () => ServingState;
  /**
   * With peers from the registry (control_plane.peers): every peer's entry in force now
   * (registry/peers.ts peerEntries), which a pipeline built with other entries refuses to serve.
   */
  readonly peersInForce?: () => ReadonlyMap<string, string>;
  /**
   * Told the result of every reload of a stage's file-backed material (metrics). A stage whose
   * material comes from files creates it with `createReloadableSource({..., onReload})`.
   */
  readonly onReload?: ReloadListener;
}

export interface GuardPipeline {
  readonly run: Pipeline;
  readonly stages: readonly Stage[];
  /** Re-reads the stages' file-backed material (SIGHUP); invalid material keeps the old. */
  reload(trigger: ReloadTrigger): ReloadResult[];
  /** The request's answer went out with `status` (after its pipeline ended): stages that hold a claim settle it. */
  settled(ctx: RequestContext, status: number): void;
  /** The bearer secrets in force and their not_after (for the expiry metric); empty without bearer. */
  bearerExpiries(): readonly BearerExpiry[];
  /** Releases what the stages hold (upstream connections, timers, file watchers). */
  close(): void;
}

/** Request headers consumed as credentials by the stages: never forwarded upstream. */
const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set(['authorization', ...SIGNATURE_HEADERS]);

export function buildPipeline(config: Readonly<Config>, deps: PipelineDeps): GuardPipeline {
  const methods = config.auth.methods;
  // Reloadable stages: the Authorization stage (bearer and/or jwt) and the signature stage.
  const credentials: CredentialStage[] = [];
  let bearer: BearerVerifier | undefined;
  let signature: CredentialStage | undefined;
  try {
    if (methods.includes('bearer')) bearer = createBearerVerifier(config, deps);
    const jwt = methods.includes('jwt') ? createJwtCredential(config, deps) : undefined;
    if (bearer || jwt) credentials.push(createAuthorizationStage({ bearer, jwt }));
    // Step 7, after the body: reloadable like the credentials, but not part of step 4.
    if (methods.includes('signature')) {
      signature = createSignatureStage(config, {
        now: deps.now, nonceStore: requireStore(deps), log: deps.log, onReload: deps.onReload,
        // A retry of a batch reuses its webhook-id: the delivery record tells it from a replay.
        deferReusedNonce: config.upstream.deduplicate !== undefined,
      });
    }
  } catch (err) {
    if (credentials.length === 0) bearer?.close(); // the jwt verifier failed: bearer's watchers go too
    for (const c of credentials) c.close();
    signature?.close();
    throw err;
  }
  const bans = createBanStages(deps.bans);
  if (config.replay?.sequence !== undefined && !deps.sequences) throw new Error('replay.sequence is set but no sequence tracker was given to buildPipeline');
  const sequence = deps.sequences ? createSequenceStage(config, deps.sequences) : undefined;
  const forward = createForwardStage(config, { strippedHeaders: CREDENTIAL_HEADERS, ...(deps.deliveries ? { deliveries: deps.deliveries } : {}), log: deps.log });
  const stages: Stage[] = [
    // 0. The control plane confirms this guard's role (registry/): otherwise nothing is served.
    ...(deps.registry ? [createRegistryStage(deps.registry)] : []),
    // 1. TLS: verified at the handshake (guard/tls-gate.ts), where banned clients are cut too;
    //    a connection's certificate is verified again when the trust changed since.
    //    HTTP framing the parser let through (smuggling forms, too many header fields).
    createConnectionTrustStage({ trust: deps.clientTrust, now: deps.now }),
    createFramingStage(config),
    // 2. Ban check (address, and the POP the certificate names), then the per-address rate limit.
    bans.early,
    createAddressRateStage(deps.limiters.addressRate),
    // 3. Route. A credential anywhere in the URL is named first (AUTH_TOKEN_IN_PATH, _QUERY,
    //    _FRAGMENT); any other query is the route stage's ROUTE_QUERY_NOT_ALLOWED.
    createUrlTokenStage(),
    createRouteStage(config),
    // 4. Authentication: every credential names a POP; they must agree (a verified client
    //    certificate always takes part and sets the POP first; the Authorization header, read
    //    once, a bearer secret or a JWT, compares with it: auth/identity.ts).
    createMtlsStage(config),
    ...credentials,
    //    With peers from the registry: the POP's entry is still the one in force.
    ...(deps.peersInForce ? [createRegistryPeerStage(peerEntries(config.peers), deps.peersInForce)] : []),
    // 5. Rate limit: a ban of a POP that only authentication named (keys step 2 asked about are
    //    not asked again), then the per-POP limit.
    bans.afterAuthentication,
    createPopRateStage(deps.limiters.popRate),
    // 6. Body: first its headers (each read once, no content coding), then the bytes.
    createRequestHeadersStage(config),
    createBodyStage(config),
    // 7. Freshness, replay, integrity.
    ...(signature ? [signature] : []),
    createBodyContractStage(config),
    //    The batch's number in its signer's epoch (replay.sequence): claimed, gaps reported.
    ...(sequence ? [sequence] : []),
    // 8. Proxy.
    forward,
  ];
  return {
    run: compose(stages),
    stages,
    settled: (ctx, status) => sequence?.settled(ctx, status),
    bearerExpiries: () => bearer?.expiries() ?? [],
    reload: (trigger) => [...credentials, ...(signature ? [signature] : [])].flatMap((c) => c.reload(trigger)),
    close: () => {
      forward.close();
      for (const c of credentials) c.close();
      signature?.close();
    },
  };
}

function requireStore(deps: PipelineDeps): NonceStore {
  if (!deps.nonceStore) throw new Error('auth.methods lists signature but no nonce store was given to buildPipeline');
  return deps.nonceStore;
}
