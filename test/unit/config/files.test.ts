// Who may change a trusted file: config/files.ts on real files and folders under mkdtemp (in
// /tmp, root-owned and sticky), with chmod, chown to another uid (the tests run as root, so the
// owner rule needs a foreign owner made on purpose), symbolic links, a sticky folder and an
// emulated Kubernetes `..data` volume.
import { chmodSync, chownSync, lchownSync, mkdirSync, mkdtempSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import t from 'tap';
import { checkReadableFile, checkSecretFile, checkTrustedPath, isMissing } from '../../../src/config/files.ts';
import { makePki } from '../../helpers/pki.ts';

const OTHER_UID = 4242;
const me = process.getuid!();
const root = mkdtempSync(join(tmpdir(), 'replguard-files-'));
let n = 0;

/** A fresh folder (mode 0700 unless told) under the test root. */
function folder(mode = 0o700, parent = root): string {
  const dir = join(parent, `d${n++}`);
  mkdirSync(dir);
  chmodSync(dir, mode);
  return dir;
}

function file(dir: string, name = 'f', mode = 0o644, content = 'x'): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

/** The problem's message, or undefined when trusted. */
const check = (path: string, kind: 'file' | 'folder' = 'file') => checkTrustedPath(path, 'tls.client_ca_file', kind)?.message;

t.test('a plain file in a private folder, and the test helpers\' own files, are trusted', async (t) => {
  t.equal(check(file(folder())), undefined);
  t.equal(check(file(folder(0o755), 'f', 0o600)), undefined);
  const pki = makePki(['calgary-01']);
  for (const f of [pki.caFile, pki.server.cert, pki.server.key]) t.equal(check(f), undefined, f);
  t.equal(checkReadableFile(pki.caFile, 'k'), undefined);
  t.equal(checkSecretFile(pki.server.key, 'k'), undefined);
});

t.test('the file: not writable by group or others, owned by root or this user', async (t) => {
  const dir = folder();
  for (const mode of [0o664, 0o646, 0o666, 0o620]) {
    const f = file(dir, `m${mode.toString(8)}`, mode);
    const message = check(f);
    t.match(message, f, `mode ${mode.toString(8)}: names the file`);
    t.match(message, `chmod go-w ${f}`, 'and the fix');
  }
  t.equal(checkTrustedPath(join(dir, 'm664'), 'tls.client_ca_file')?.path, 'tls.client_ca_file', 'the problem names the key path');
  const foreign = file(dir, 'foreign');
  chownSync(foreign, OTHER_UID, OTHER_UID);
  t.match(check(foreign), `uid ${OTHER_UID}`, 'owned by another uid');
  t.match(check(foreign), `chown root`, 'the fix');
  chownSync(foreign, 0, OTHER_UID);
  t.equal(check(foreign), undefined, 'root-owned, any group (not group-writable): trusted');
});

t.test('every folder on the way: not writable by group or others, owned by root or this user', async (t) => {
  const outer = folder(0o755);
  const inner = folder(0o755, outer);
  const f = file(inner);
  t.equal(check(f), undefined);
  for (const mode of [0o775, 0o757, 0o777]) {
    chmodSync(outer, mode);
    t.match(check(f), `the folder ${outer} `, `an ancestor of mode ${mode.toString(8)} is named`);
    t.match(check(f), `chmod go-w ${outer}`, 'with the fix');
  }
  chmodSync(outer, 0o755);
  chownSync(inner, OTHER_UID, 0);
  t.match(check(f), `the folder ${inner} `, 'a folder owned by another uid is named');
  t.match(check(f), `chown root`);
  chownSync(inner, me, 0);
  t.equal(check(f), undefined, 'fixed');
});

t.test('a sticky folder (like /tmp) on the way is accepted; what the walk uses in it must be ours', async (t) => {
  const sticky = folder(0o1777);
  const own = file(folder(0o700, sticky));
  t.equal(check(own), undefined, 'a private folder in a sticky folder');
  const direct = file(sticky, 'ca.crt');
  t.equal(check(direct), undefined, 'a file right in a sticky folder');
  chownSync(direct, OTHER_UID, OTHER_UID);
  t.match(check(direct), `uid ${OTHER_UID}`, 'a file someone else put there');
  const target = file(folder());
  const link = join(sticky, 'planted-link');
  symlinkSync(target, link);
  lchownSync(link, OTHER_UID, OTHER_UID);
  t.match(check(link), `the symbolic link ${link} is owned by uid ${OTHER_UID}`, 'a symbolic link someone else put there');
  chmodSync(sticky, 0o0777);
  t.match(check(own), `the folder ${sticky} `, 'the same folder without the sticky bit is refused');
  chmodSync(sticky, 0o1777);
  const keys = folder(0o1777);
  file(keys, 'a.pub');
  t.match(check(keys, 'folder'), `the key folder ${keys} `, 'a sticky key folder is refused: every file in it would be read');
});

t.test('symbolic links: the path as given, the real path, and every hop', async (t) => {
  const safe = folder(0o755);
  const open = folder(0o777);
  const inOpen = file(open, 'ca.crt');
  const linkToOpen = join(safe, 'to-open');
  symlinkSync(inOpen, linkToOpen);
  t.match(check(linkToOpen), `the folder ${open} `, 'the real path lies in an open folder');

  const real = file(safe, 'ca.crt');
  const linkInOpen = join(open, 'link');
  symlinkSync(real, linkInOpen);
  t.match(check(linkInOpen), `the folder ${open} `, 'the link lies in an open folder (it can be replaced)');

  const hop = join(open, 'hop');
  symlinkSync(real, hop);
  const first = join(safe, 'first');
  symlinkSync(hop, first);
  t.match(check(first), `the folder ${open} `, 'a link on the way lies in an open folder, though the path and the real path are safe');

  const relative = join(safe, 'relative');
  mkdirSync(join(safe, 'sub'));
  symlinkSync(join('..', 'ca.crt'), join(safe, 'sub', 'up'));
  symlinkSync(join('sub', 'up'), relative);
  t.equal(check(relative), undefined, 'relative links with .. resolve to the safe file');

  const loopA = join(safe, 'loop-a');
  symlinkSync(join(safe, 'loop-b'), loopA);
  symlinkSync(loopA, join(safe, 'loop-b'));
  t.match(check(loopA), 'symbolic links', 'a loop is a problem, not a hang');
});

/**
 * What the kubelet's atomic writer makes: `mount/..2026_...` (0755) holding the files,
 * `mount/..data -> ..2026_...`, and for each top-level name `mount/name -> ..data/name`.
 */
function kubeletVolume(mount: string): { path(name: string): string } {
  mkdirSync(mount);
  const version = '..2026_01_31_12_00_00.000000001';
  mkdirSync(join(mount, version, 'tls'), { recursive: true });
  chmodSync(join(mount, version), 0o755);
  writeFileSync(join(mount, version, 'ca.crt'), 'x', { mode: 0o440 });
  writeFileSync(join(mount, version, 'tls', 'server.crt'), 'y', { mode: 0o440 });
  symlinkSync(version, join(mount, '..data'));
  for (const name of ['ca.crt', 'tls']) symlinkSync(join('..data', name), join(mount, name));
  return { path: (name) => join(mount, name) };
}

t.test('a Kubernetes Secret volume (..data layout) may be group-writable or 1777', async (t) => {
  const mount = join(folder(0o755), 'secret');
  const volume = kubeletVolume(mount);
  chmodSync(mount, 0o2775);
  t.equal(check(volume.path('ca.crt')), undefined, 'a file of the volume, through ..data');
  t.equal(check(join(mount, 'tls', 'server.crt')), undefined, 'a nested file of the volume');
  chmodSync(mount, 0o3777);
  t.equal(check(volume.path('ca.crt')), undefined, '1777 (a tmpfs root), sticky');
  t.equal(check(mount, 'folder'), undefined, 'the volume as a key folder');

  chmodSync(mount, 0o2775);
  const planted = file(mount, 'planted.crt');
  t.match(check(planted), `the folder ${mount} `, 'a file put straight into the group-writable folder is refused');
  chmodSync(mount, 0o0777);
  t.match(check(volume.path('ca.crt')), `the folder ${mount} `, 'other-writable without the sticky bit is refused');
  chmodSync(mount, 0o2775);

  // ..data must point at a timestamped folder beside it, itself not writable by others.
  const data = join(mount, '..data');
  const version = join(mount, readlinkSync(data));
  chmodSync(version, 0o775);
  t.match(check(volume.path('ca.crt')), 'writable', 'a group-writable timestamped folder is refused');
  chmodSync(version, 0o755);
  const elsewhere = folder(0o755);
  file(elsewhere, 'ca.crt');
  symlinkSync(elsewhere, join(mount, '..tmp'));
  renameSync(join(mount, '..tmp'), data);
  t.match(check(volume.path('ca.crt')), `the folder ${mount} `, 'a ..data that points out of the folder is not the layout');
  rmSync(mount, { recursive: true });
});

t.test('folders of keys', async (t) => {
  const keys = folder(0o755);
  file(keys, 'a.pub');
  t.equal(check(keys, 'folder'), undefined);
  chmodSync(keys, 0o775);
  t.match(check(keys, 'folder'), `the key folder ${keys} `, 'a group-writable key folder');
  t.match(check(keys, 'folder'), `chmod go-w ${keys}`);
  t.match(check(file(folder()), 'folder'), 'is not a folder');
  t.match(check(keys), 'is not a regular file', 'a folder where a file is expected');
});

t.test('checkReadableFile and checkSecretFile apply the rule; isMissing tells a removal from the rest', async (t) => {
  const dir = folder(0o777);
  const f = file(dir, 'token', 0o600);
  t.match(checkReadableFile(f, 'peers[0].token_files[0]'), { path: 'peers[0].token_files[0]', message: `chmod go-w ${dir}` });
  t.match(checkSecretFile(f, 'peers[0].token_files[0]'), { path: 'peers[0].token_files[0]', message: `chmod go-w ${dir}` });
  const safe = folder();
  t.equal(isMissing(join(safe, 'nothing')), true, 'a missing file');
  t.equal(isMissing(join(safe, 'no-folder', 'file')), true, 'a missing folder on the way');
  symlinkSync(join(safe, 'gone'), join(safe, 'dangling'));
  t.equal(isMissing(join(safe, 'dangling')), true, 'a dangling link (the kubelet removes the name after the swap)');
  t.equal(isMissing(folder(0o700, safe)), false, 'a folder in place of the file is not a removal');
  t.equal(isMissing(file(safe)), false);
  t.equal(isMissing(join(file(safe, 'plain'), 'below')), false, 'ENOTDIR is not a removal');
});
