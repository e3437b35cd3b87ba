/** File checks shared by config validation and credential reloads. Read-only: no side effects. */
import { accessSync, constants, statSync } from 'node:fs';
import process from 'node:process';
import type { ConfigProblem } from './errors.ts';

/** A readable regular file, or the problem with it (the key path names the config key). */
export function checkReadableFile(file: string, keyPath: string): ConfigProblem | undefined {
  try {
    const st = statSync(file);
    if (!st.isFile()) return { path: keyPath, message: `${file} is not a regular file` };
    accessSync(file, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { path: keyPath, message: `${file} does not exist; create it or fix the path (relative paths start at the config file's folder)` };
    if (code === 'EACCES') return { path: keyPath, message: `${file} is not readable by this user (uid ${process.getuid?.() ?? '?'}); fix its owner or mode` };
    return { path: keyPath, message: `${file} cannot be read: ${code ?? String(err)}` };
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
