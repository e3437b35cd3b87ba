import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `check` every 10 ms until it holds; throws after `ms` naming what it waited for. */
export async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}
