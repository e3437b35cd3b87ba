// Process lifecycle (every child killed on exit, also on Ctrl-C) and /proc accounting.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, openSync } from 'node:fs';
import net from 'node:net';
import http from 'node:http';

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

const children = new Set();

/** Kill every process group we started, synchronously (safe inside 'exit'). */
export function killAll(signal = 'SIGKILL') {
  for (const child of children) {
    try { process.kill(-child.pid, signal); } catch { /* already gone */ }
  }
  children.clear();
}

let handlersInstalled = false;
function installHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => killAll('SIGKILL'));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping every process it started\n`);
      killAll('SIGKILL');
      process.exit(130);
    });
  }
}

/**
 * Start a long-lived process in its own process group. stdout/stderr go to files
 * (a realistic sink: the audit/access log is part of the target's cost).
 */
export function startProcess(cmd, args, { cwd, env, stdoutFile, stderrFile, pipes = false } = {}) {
  installHandlers();
  // pipes: stdin and stdout are pipes to this process (a generator it talks to, lib/flood.mjs)
  const out = pipes ? 'pipe' : stdoutFile ? openSync(stdoutFile, 'a') : 'ignore';
  const err = stderrFile ? openSync(stderrFile, 'a') : 'ignore';
  const child = spawn(cmd, args, { cwd, env: env ?? process.env, detached: true, stdio: [pipes ? 'pipe' : 'ignore', out, err] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Stop one process group we started: SIGTERM, then SIGKILL after a grace period. */
export async function stopProcess(child, graceMs = 3000) {
  if (child.exitCode !== null || child.signalCode !== null) { children.delete(child); return; }
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
  const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, graceMs);
  await exited;
  clearTimeout(timer);
  children.delete(child);
}

/** Run a bounded command to completion, collecting stdout/stderr. */
export function runBounded(cmd, args, { env, cwd, timeoutMs }) {
  installHandlers();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A free loopback TCP port (bound and released; another process could race us, rarely). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export { sleep };

/** Wait until something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port, child, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before listening on ${port}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/** Wait until GET http://127.0.0.1:port/path answers 200. */
export async function waitForHttp200(port, path, child, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before ${path} was ready`);
    const status = await new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', () => resolve(0));
      req.on('timeout', () => { req.destroy(); resolve(0); });
    });
    if (status === 200) return;
    await sleep(150);
  }
  throw new Error(`http://127.0.0.1:${port}${path} not 200 after ${timeoutMs} ms`);
}

// ---- /proc accounting ----

/** Fields of /proc/<pid>/stat after the "(comm)" (which may itself contain spaces and parens). */
function statFields(text) {
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** [ppid, utime+stime ticks] of one process (all its threads, live and exited), or null. */
function readPidStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = statFields(text);
    // after ')': [0]=state [1]=ppid ... [11]=utime [12]=stime [13]=cutime [14]=cstime
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), childTicks: Number(f[13]) + Number(f[14]), comm: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')) };
  } catch {
    return null;
  }
}

/** Every live process: pid -> { ppid, ticks (utime+stime, all threads), childTicks (reaped children) }. */
export function snapshotProcesses() {
  const all = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readPidStat(name);
    if (s) all.set(Number(name), s);
  }
  return all;
}

/** The pid and all its live descendants, from a snapshot. */
export function processTree(rootPid, all = snapshotProcesses()) {
  const byParent = new Map();
  for (const [pid, s] of all) {
    const list = byParent.get(s.ppid) ?? [];
    list.push(pid);
    byParent.set(s.ppid, list);
  }
  const out = [];
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop();
    out.push(pid);
    for (const c of byParent.get(pid) ?? []) stack.push(c);
  }
  return out;
}

/**
 * CPU ticks (utime+stime) of a process tree, counting every thread and the reaped children's
 * cutime/cstime, so a short-lived helper is not lost.
 */
export function treeTicks(rootPid, all = snapshotProcesses()) {
  let ticks = 0;
  const pids = processTree(rootPid, all);
  for (const pid of pids) {
    const s = all.get(pid);
    if (s) ticks += s.ticks + s.childTicks;
  }
  return { ticks, pids };
}

/**
 * CPU used between two snapshots by processes outside `ours` (pids), split into kernel threads
 * (children of kthreadd, e.g. ksoftirqd doing network work for us) and user-space processes
 * (someone else's load: the noise we flag). Processes that started and ended in between are missed.
 */
export function othersTicks(before, after, ours) {
  let kernel = 0;
  let user = 0;
  const top = [];
  for (const [pid, s] of after) {
    if (ours.has(pid)) continue;
    const d = s.ticks - (before.get(pid)?.ticks ?? 0);
    if (d <= 0) continue;
    if (pid === 2 || s.ppid === 2) kernel += d;
    else { user += d; top.push({ pid, comm: s.comm, ticks: d }); }
  }
  top.sort((a, b) => b.ticks - a.ticks);
  return { kernel, user, top: top.slice(0, 3) };
}

/**
 * Ticks spent on the processes' main threads (task id == pid) over a list of pids: the rest of a
 * tree's CPU is helper threads (for Node: libuv pool, e.g. asynchronous file writes; V8 GC).
 */
export function mainThreadTicks(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const s = readPidStat(`${pid}/task/${pid}`);
    if (s) ticks += s.ticks;
  }
  return ticks;
}

/** Rss and Pss (kB) summed over a process tree, from smaps_rollup. */
export function treeMemory(rootPid) {
  let rssKb = 0;
  let pssKb = 0;
  for (const pid of processTree(rootPid)) {
    try {
      const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      rssKb += Number(/^Rss:\s+(\d+)/m.exec(text)?.[1] ?? 0);
      pssKb += Number(/^Pss:\s+(\d+)/m.exec(text)?.[1] ?? 0);
    } catch { /* exited or not permitted */ }
  }
  return { rssKb, pssKb };
}

/** Aggregate machine jiffies from /proc/stat (first "cpu" line). */
export function machineStat() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const [, user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  const busy = user + nice + system + irq + softirq;
  return { busy, irq: irq + softirq, idle: idle + iowait, steal, total: busy + idle + iowait + steal };
}

/** Ticks of the process /bin/sh ran wrk under: its cutime+cstime once wrk has been reaped. */
export function parseShellChildTicks(statLine) {
  const f = statFields(statLine.trim());
  return Number(f[13]) + Number(f[14]);
}
