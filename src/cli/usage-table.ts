/**
 * The one usage table of the command line: every command, its options with their defaults, and
 * an example. It is the source of `--help` (cli/help.ts), of the parsing (cli/args.ts), of the
 * README's command list, of the man page (docs/replguard.1) and of the bash/zsh completion
 * (`replguard completion bash|zsh`); test/docs/cli-usage.test.ts keeps the files in step.
 * Pure data: no command is imported here, so `--help` starts nothing.
 */

export interface OptionSpec {
  /** The long name, without `--`. */
  readonly name: string;
  readonly short?: string;
  readonly type: 'string' | 'boolean';
  /** The value's placeholder in usage lines (string options), e.g. FILE. */
  readonly value?: string;
  readonly multiple?: boolean;
  readonly required?: boolean;
  /** The default, as the command line would write it. */
  readonly default?: string;
  readonly description: string;
  /** What the shell completes for the value: files, folders, or a fixed list. */
  readonly complete?: 'file' | 'dir' | readonly string[];
}

export interface PositionalSpec {
  readonly name: string;
  readonly description: string;
  readonly complete?: 'file' | readonly string[];
}

export interface CommandSpec {
  readonly name: string;
  /** One line, for the command list. */
  readonly summary: string;
  /** A paragraph for `--help` and the man page. */
  readonly description: string;
  readonly options: readonly OptionSpec[];
  /** At most one positional argument, required when present. */
  readonly positional?: PositionalSpec;
  readonly examples: readonly string[];
  /** false: the command reports its missing required options itself, each with its reason. */
  readonly checksRequired?: false;
}

const config: OptionSpec = { name: 'config', short: 'c', type: 'string', value: 'FILE', required: true, description: 'the config file, of role backup or primary', complete: 'file' };

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'serve',
    summary: 'run the role the config names (guard or signer) until SIGTERM',
    description: 'Runs the guard (role: backup) or the signer (role: primary), as the config file says. SIGHUP reloads the config and its files, SIGTERM drains in-flight requests up to shutdown_timeout, a second SIGTERM exits at once.',
    options: [config],
    examples: ['replguard serve -c /etc/replguard/replguard.yaml'],
  },
  {
    name: 'check-config',
    summary: 'every start-up check, without serving; exit 2 on a problem',
    description: 'Validates the config and every file it names exactly as serve does at start-up, reports every problem found in one run (YAML syntax errors with line and column), and warns about what will hurt soon (a certificate expiring within 14 days, a CRL past its nextUpdate). Exit 0 when the config is usable, 2 otherwise.',
    options: [
      config,
      { name: 'print', type: 'boolean', description: 'print the effective config (defaults applied, durations and sizes with units, secrets as file paths only)' },
    ],
    examples: ['replguard check-config -c /etc/replguard/replguard.yaml', 'replguard check-config -c config/demo.yaml --print'],
  },
  {
    name: 'doctor',
    summary: 'diagnose a deployment: config, files, certificates, CRL, upstream, Redis, admin port',
    description: 'What to run when it does not work: checks the config, every file it names (readable, mode, owner), the certificates (chain, expiry, names), the CRL\'s freshness, that the upstream (or the remote guard) answers a TCP connection, that Redis answers when configured, and that the admin listener can bind. One line per check, ok or the problem and its fix; exit 1 on any problem. Sends no replication request.',
    options: [
      config,
      { name: 'timeout', type: 'string', value: 'DURATION', default: '5s', description: 'time allowed for each network check' },
    ],
    examples: ['replguard doctor -c /etc/replguard/replguard.yaml'],
  },
  {
    name: 'migrate-config',
    summary: "convert the security review's replication.yaml into a replguard config",
    description: "Reads a config in the format of the security review's secure example (pop_id, region, role, backup_pop, auth.method with mtls_* or token_file, replication.*, security.*) and writes the equivalent replguard config for its role: the guard for a backup, the signer for a primary. Every key without an equivalent is listed on stderr with the reason; review the result, then run check-config on it.",
    options: [
      { name: 'out', short: 'o', type: 'string', value: 'FILE', description: 'write the new config here (default: stdout)', complete: 'file' },
      { name: 'force', type: 'boolean', description: 'replace FILE if it exists' },
    ],
    positional: { name: 'FILE', description: 'the old replication.yaml', complete: 'file' },
    examples: ['replguard migrate-config /etc/clavitor/replication.yaml -o /etc/replguard/replguard.yaml'],
  },
  {
    name: 'dev-pki',
    summary: 'a demo CA, a localhost server certificate, a client certificate per POP (keys 0600)',
    description: 'Writes a demo CA, a server certificate for localhost and one client certificate per POP into a folder. For demos and tests only: production certificates come from your own CA.',
    options: [
      { name: 'out', type: 'string', value: 'DIR', required: true, description: 'the folder to write (created mode 0700)', complete: 'dir' },
      { name: 'pops', type: 'string', value: 'LIST', default: 'calgary-01', description: 'comma-separated POP ids, one client certificate each' },
    ],
    examples: ['replguard dev-pki --out ./pki --pops calgary-01,zurich-01'],
  },
  {
    name: 'gen-token',
    summary: 'a bearer secret: 32 random bytes, base64url, mode 0600; prints its fingerprint',
    description: 'Writes a new bearer secret (32 random bytes, base64url) to FILE, mode 0600, atomically. With --not-after, the file\'s second line is `not_after: <RFC 3339>`: the guard refuses the secret from then on (AUTH_BEARER_EXPIRED) and the signer stops sending with it. Prints the fingerprint, never the secret.',
    options: [
      { name: 'out', short: 'o', type: 'string', value: 'FILE', required: true, description: 'the secret file to write', complete: 'file' },
      { name: 'not-after', type: 'string', value: 'TIME', description: 'when the secret expires: an RFC 3339 time (2027-01-31T00:00:00Z) or a lifetime from now (30d, 24h); default: never' },
      { name: 'force', type: 'boolean', description: 'replace FILE if it exists (the old secret stops working at the next reload)' },
    ],
    examples: ['replguard gen-token --out /etc/replguard/secrets/calgary-01.token', 'replguard gen-token --out /etc/replguard/secrets/calgary-01.token --not-after 30d'],
  },
  {
    name: 'make-jwt',
    summary: 'a JWT for a POP (or, with --claim, the claim set for an external signer)',
    checksRequired: false,
    description: 'Signs a JWT that a guard accepts (asymmetric keys only), or with --claim prints the claim set for an external provider to sign.',
    options: [
      { name: 'key', short: 'k', type: 'string', value: 'KEY', description: 'PEM private key to sign with (required unless --claim)', complete: 'file' },
      { name: 'pop', type: 'string', value: 'ID', required: true, description: 'the source POP (the sub claim)' },
      { name: 'audience', short: 'a', type: 'string', value: 'ID', required: true, description: "the guard's pop_id (the aud claim)" },
      { name: 'route', short: 'r', type: 'string', value: 'METHOD:PATH', multiple: true, required: true, description: 'a route the token may call; repeat for several' },
      { name: 'ttl', type: 'string', value: 'DURATION', default: '10m', description: 'lifetime of the token' },
      { name: 'issuer', type: 'string', value: 'ISS', default: 'replguard', description: 'the iss claim' },
      { name: 'alg', type: 'string', value: 'ALG', description: 'JWS algorithm (default: follows the key)', complete: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] },
      { name: 'bind-cert', type: 'string', value: 'CERT', description: 'bind the token to this client certificate (cnf x5t#S256)', complete: 'file' },
      { name: 'out', short: 'o', type: 'string', value: 'FILE', description: 'write the token here, mode 0600 (default: stdout)', complete: 'file' },
      { name: 'claim', type: 'boolean', description: 'print the claim set instead of a signed token' },
    ],
    examples: ['replguard make-jwt -k keys/calgary-01.key --pop calgary-01 --audience zurich-01 --route POST:/api/replication/apply'],
  },
  {
    name: 'sign',
    summary: 'the three webhook-* signature headers for a body, for curl -H @file',
    description: 'Prints the Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature) for a request body, one "name: value" line each. Several --key options sign with each (a rotation).',
    options: [
      { name: 'key', type: 'string', value: 'FILE', multiple: true, required: true, description: 'signing key file (whsec_, whsk_ or PEM Ed25519); repeat for a rotation', complete: 'file' },
      { name: 'body', type: 'string', value: 'FILE', required: true, description: 'the request body', complete: 'file' },
      { name: 'id', type: 'string', value: 'ID', description: 'the webhook-id (default: a random one)' },
      { name: 'timestamp', type: 'string', value: 'T', description: 'Unix seconds (default: now)' },
    ],
    examples: ['replguard sign --key keys/calgary-01.whsec --body batch.json > headers.txt'],
  },
  {
    name: 'registry',
    summary: "HQ's side of the signed POP registry: keygen, sign, verify, show",
    description: 'HQ tools for the control plane (docs/control-plane.md). keygen writes an HQ key pair (PREFIX.key, mode 0600, and PREFIX.pub for control_plane.keys). sign turns a YAML or JSON payload into a signed registry (a compact JWS). verify checks a registry as a POP would, against the public keys and, with --previous, against the registry in force (no rollback); it exits 1 with the refusal code when a POP would refuse it. show prints the payload, verified when --keys is given. Each option belongs to the subcommands named in its description.',
    options: [
      { name: 'out', short: 'o', type: 'string', value: 'PATH', description: 'keygen: the key files\' prefix (PREFIX.key, PREFIX.pub); sign: the signed registry to write', complete: 'file' },
      { name: 'alg', type: 'string', value: 'ALG', default: 'EdDSA', description: 'keygen: the key type', complete: ['EdDSA', 'ES256'] },
      { name: 'force', type: 'boolean', description: 'keygen: replace existing key files' },
      { name: 'key', short: 'k', type: 'string', value: 'FILE', description: 'sign: the HQ private key (PEM)', complete: 'file' },
      { name: 'kid', type: 'string', value: 'KID', description: "sign: the key id to write (default: the key's thumbprint)" },
      { name: 'in', short: 'i', type: 'string', value: 'FILE', description: 'sign: the payload (YAML or JSON); verify, show: the signed registry', complete: 'file' },
      { name: 'keys', type: 'string', value: 'PUB', multiple: true, description: "verify, show: an HQ public key; repeat during HQ's key rotation", complete: 'file' },
      { name: 'previous', type: 'string', value: 'FILE', description: 'verify: the registry in force, to refuse a rollback', complete: 'file' },
    ],
    positional: { name: 'SUBCOMMAND', description: 'keygen, sign, verify or show', complete: ['keygen', 'sign', 'verify', 'show'] },
    examples: [
      'replguard registry keygen -o hq-2026',
      'replguard registry sign -k hq-2026.key -i registry.yaml -o registry.jws',
      'replguard registry verify --keys hq-2026.pub -i registry.jws --previous registry-in-force.jws',
    ],
    checksRequired: false,
  },
  {
    name: 'demo',
    summary: 'the README demo: backup, guard and signer (Node only)',
    description: 'Creates a demo PKI and signing keys in .demo/ if missing, starts the demo backup on 127.0.0.1:8080, the guard on 8443 and the signer on 127.0.0.1:8081, and prints curl commands to try. Ctrl-C stops them.',
    options: [],
    examples: ['replguard demo'],
  },
  {
    name: 'completion',
    summary: 'print the bash or zsh completion script',
    description: 'Prints a completion script generated from the usage table. bash: source it, or put it in /etc/bash_completion.d/replguard. zsh: put it as _replguard in a folder of $fpath.',
    options: [],
    positional: { name: 'SHELL', description: 'bash or zsh', complete: ['bash', 'zsh'] },
    examples: ['replguard completion bash > /etc/bash_completion.d/replguard'],
  },
  {
    name: 'version',
    summary: 'the version and every runtime dependency with its version',
    description: 'Prints the version, the runtime and every runtime dependency with its installed version. `replguard --version` prints the first line only.',
    options: [],
    examples: ['replguard version'],
  },
];

/** The option every command takes. */
export const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', type: 'boolean', description: 'show this help and exit' };

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}
