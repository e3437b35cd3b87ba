/**
 * File checks shared by config validation and credential reloads. Read-only: no side effects.
 *
 * Who may change a file the process trusts (the config file, certificates, CA bundles, keys,
 * tokens, revocation lists), checked by walking the path the way the kernel resolves it.
 *
 * The rule, after Mark Wooding's `chkpath`/`checkpath(3)` ("nobody other than the user and the
 * superuser should be able to add or change the set of files available within the directories
 * of the path"); no library for Node or Deno does this walk, so it is written here:
 *  - the file: owned by root or by this process's user, not writable by group or others;
 *  - every folder the walk looks up an entry in: owned by root or by this process's user, not
 *    writable by group or others. That is every ancestor of the path as given, every ancestor
 *    of its real path, and every folder a symbolic link on the way leads through;
 *  - every symbolic link on the way: owned by root or by this process's user.
 * Two kinds of folder on the way may be writable by others:
 *  - a folder with the sticky bit (like /tmp, mode 1777): others can add names there, but not
 *    rename or remove a name they do not own, and every name the walk uses is owned by root or
 *    by this user. As in chkpath, not the last step: a key folder (`kind: 'folder'`) whose
 *    every file is read must not be one;
 *  - a Kubernetes Secret or ConfigMap volume (the kubelet's atomic writer): the mount folder
 *    holds `..data`, a symbolic link to a timestamped `..<name>` folder beside it, and the files
 *    are symbolic links into `..data/`. The kubelet owns that folder and mounts it read-only; with
 *    `fsGroup` it is group-writable (or 1777, a tmpfs root). The walk accepts it when `..data`
 *    is laid out that way and the file's real path lies under it: a file put straight into the
 *    folder is not accepted. A key folder may be such a volume (its files are walked one by one).
 */
import { accessSync, constants, lstatSync, readFileSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import process from 'node:process';
import type { ConfigProblem } from './errors.ts';

/**
 * A readable regular file that only root or this process's user can change (checkTrustedPath),
 * or the problem with it (the key path names the config key).
 */
export function checkReadableFile(file: string, keyPath: string): ConfigProblem | undefined {
  try {
    const st = statSync(file);
    if (!st.isFile()) return { path: keyPath, message: `${file} is not a regular file` };
    accessSync(file, constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { path: keyPath, message: `${file} does not exist; create it or fix the path (relative paths start at the config file's folder)` };
    if (code === 'EACCES') return { path: keyPath, message: `${file} is not readable by this user (uid ${process.getuid?.() ?? '?'}); fix its owner or mode` };
    return { path: keyPath, message: `${file} cannot be read: ${code ?? String(err)}` };
  }
  return checkTrustedPath(file, keyPath);
}

/**
 * Whether the file is gone: it (or a folder on its way) does not exist, or it is a symbolic
 * link to nothing (a name the kubelet has not removed yet). Anything else (a folder in its
 * place, no permission) is not a removal but unusable material.
 */
export function isMissing(file: string): boolean {
  try {
    statSync(file);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/**
 * A secret file (private key, token, signing key): readable, and not readable by others.
 * Group-readable is accepted only when the group is one of this process's own groups, which is
 * how Kubernetes mounts Secrets with `fsGroup` (mode 0440); any other group could read it.
 */
export function checkSecretFile(file: string, keyPath: string): ConfigProblem | undefined {
  const unreadable = checkReadableFile(file, keyPath);
  if (unreadable) return unreadable;
  const st = statSync(file);
  if (st.mode & 0o004) {
    return { path: keyPath, message: `${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it` };
  }
  if (st.mode & 0o040 && !ownGroups().has(st.gid)) {
    return { path: keyPath, message: `${file} is readable by group ${st.gid}, which this process is not in (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it` };
  }
  return undefined;
}

function ownGroups(): Set<number> {
  const groups = new Set<number>(process.getgroups?.() ?? []);
  const gid = process.getgid?.();
  if (gid !== undefined) groups.add(gid);
  return groups;
}

/**
 * A file this process appends to (the audit file): an existing regular file it may write, or a
 * new one in an existing folder it may write. Nothing is created here (validation has no side
 * effects).
 */
/**
 * A password file's secret as it is used (store/redis.ts sends it as AUTH, and config/validate.ts
 * judges its strength): the text without surrounding whitespace.
 */
export function readPasswordFile(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

export function checkAppendableFile(file: string, keyPath: string): ConfigProblem | undefined {
  try {
    const st = statSync(file);
    if (!st.isFile()) return { path: keyPath, message: `${file} is not a regular file` };
    accessSync(file, constants.W_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES') return { path: keyPath, message: `${file} is not writable by this user (uid ${process.getuid?.() ?? '?'}); fix its owner or mode` };
    if (code !== 'ENOENT') return { path: keyPath, message: `${file} cannot be opened: ${code ?? String(err)}` };
  }
  const dir = dirname(file);
  try {
    if (!statSync(dir).isDirectory()) return { path: keyPath, message: `${dir} is not a folder` };
    accessSync(dir, constants.W_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { path: keyPath, message: `the folder ${dir} does not exist; create it or fix the path` };
    if (code === 'EACCES') return { path: keyPath, message: `the folder ${dir} is not writable by this user (uid ${process.getuid?.() ?? '?'}); fix its owner or mode` };
    return { path: keyPath, message: `the folder ${dir} cannot be used: ${code ?? String(err)}` };
  }
}


/** More symbolic links than this on one path is a loop (Linux's own limit, MAXSYMLINKS). */
const MAX_SYMLINKS = 40;

const mode = (st: Stats) => (st.mode & 0o7777).toString(8).padStart(4, '0');
const writableBy = (st: Stats) => (st.mode & 0o020 && st.mode & 0o002 ? 'group and others' : st.mode & 0o020 ? 'its group' : 'others');

/**
 * The path may be trusted (see the module comment), or the first problem found, with the fix.
 * `kind` is what the path must be: a file, or a folder of key files. The path must exist
 * (callers report a missing one in their own words first).
 */
export function checkTrustedPath(path: string, keyPath: string, kind: 'file' | 'folder' = 'file'): ConfigProblem | undefined {
  const uid = process.getuid?.();
  if (uid === undefined) {
    return { path: keyPath, message: `${path}: this platform has no POSIX owners and modes, so who may change the file cannot be checked; run on Linux` };
  }
  const problem = (message: string): ConfigProblem => ({ path: keyPath, message });
  const trustedOwner = (st: Stats) => st.uid === 0 || st.uid === uid;
  const chown = `chown root (or chown ${uid}, this process's user)`;

  // Folders writable by their group that may be a Kubernetes volume: accepted only if the real
  // path turns out to lie under their `..data`.
  const volumes: string[] = [];
  const checkFolder = (dir: string, st: Stats, final: boolean): ConfigProblem | undefined => {
    const why = final ? `the key folder ${dir}` : `the folder ${dir} (on the way to ${path})`;
    if (!trustedOwner(st)) return problem(`${why} is owned by uid ${st.uid}, who could replace what it holds; ${chown} ${dir}`);
    if ((st.mode & 0o022) === 0) return undefined;
    const sticky = (st.mode & 0o1000) !== 0;
    if (sticky && !final) return undefined;
    if ((sticky || (st.mode & 0o002) === 0) && isAtomicWriterVolume(dir, trustedOwner)) {
      // A key folder that is a volume itself: each of its files is walked on its own, through it.
      if (!final) volumes.push(dir);
      return undefined;
    }
    return problem(`${why} is writable by ${writableBy(st)} (mode ${mode(st)}): anyone who can write it can replace the file; chmod go-w ${dir}, or keep the file in a folder only root or uid ${uid} can write`);
  };

  // The walk: `dir` is always a real folder whose ancestors have all been checked.
  let pending = resolve(path).split(sep).filter(Boolean);
  let dir: string = sep;
  let hops = 0;
  let st: Stats;
  try {
    st = lstatSync(dir);
    const rootProblem = checkFolder(dir, st, pending.length === 0 && kind === 'folder');
    if (rootProblem) return rootProblem;
    let entry = dir;
    while (pending.length > 0) {
      const name = pending.shift()!;
      if (name === '.') continue;
      if (name === '..') {
        dir = dirname(dir);
        entry = dir;
        st = lstatSync(dir);
        continue;
      }
      entry = join(dir, name);
      st = lstatSync(entry);
      if (!trustedOwner(st)) {
        const what = st.isSymbolicLink() ? 'the symbolic link ' : st.isDirectory() ? 'the folder ' : '';
        return problem(`${what}${entry} is owned by uid ${st.uid}, not root or this process's user (uid ${uid}); ${chown} ${entry}`);
      }
      if (st.isSymbolicLink()) {
        hops += 1;
        if (hops > MAX_SYMLINKS) return problem(`${path}: more than ${MAX_SYMLINKS} symbolic links on the way (a loop?); fix the links`);
        const target = readlinkSync(entry);
        pending = [...target.split(sep).filter(Boolean), ...pending];
        if (isAbsolute(target)) dir = sep;
        continue;
      }
      if (pending.length === 0) break;
      if (!st.isDirectory()) return problem(`${entry} (on the way to ${path}) is not a folder`);
      const folderProblem = checkFolder(entry, st, false);
      if (folderProblem) return folderProblem;
      dir = entry;
    }
    // The last step: the file (or key folder) itself; `entry` is its real path.
    if (kind === 'folder') {
      if (!st.isDirectory()) return problem(`${path} is not a folder`);
      const folderProblem = checkFolder(entry, st, true);
      if (folderProblem) return folderProblem;
    } else {
      if (!st.isFile()) return problem(`${path} is not a regular file`);
      if (st.mode & 0o022) return problem(`${path} is writable by ${writableBy(st)} (mode ${mode(st)}); chmod go-w ${path}`);
    }
    for (const volume of volumes) {
      const data = join(volume, '..data');
      const real = join(volume, readlinkSync(data));
      if (!(entry === real || entry.startsWith(`${real}${sep}`))) {
        const vst = statSync(volume);
        return problem(`the folder ${volume} (on the way to ${path}) is writable by ${writableBy(vst)} (mode ${mode(vst)}), and the file is not one of the Kubernetes volume's files under ${data}; chmod g-w ${volume}, or keep the file in a folder only root or uid ${uid} can write`);
      }
    }
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return problem(`${path} cannot be checked: ${code ?? String(err)}`);
  }
}

/**
 * The kubelet's atomic-writer layout: `dir/..data` is a symbolic link, owned by root or this
 * user, to a `..`-named folder right beside it (`..2026_01_31_12_00_00.123456789`), which is
 * itself owned by root or this user and not writable by group or others.
 */
function isAtomicWriterVolume(dir: string, trustedOwner: (st: Stats) => boolean): boolean {
  try {
    const data = join(dir, '..data');
    const link = lstatSync(data);
    if (!link.isSymbolicLink() || !trustedOwner(link)) return false;
    const target = readlinkSync(data);
    if (!/^\.\.[^/]+$/.test(target) || target === '..data' || target === '..') return false;
    const version = lstatSync(join(dir, target));
    return version.isDirectory() && trustedOwner(version) && (version.mode & 0o022) === 0;
  } catch {
    return false;
  }
}
