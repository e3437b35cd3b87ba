// The rules the reason table's policy columns follow, so that a code added later cannot ban
// honest clients or page on routine traffic by accident.
import t from 'tap';
import { REASONS, Rejection, type Code } from '../../../src/pipeline/reasons.ts';

const codes = Object.keys(REASONS) as Code[];

t.test('a code counts toward a ban only as a client error an honest client does not meet', async (t) => {
  for (const code of codes) {
    const entry = REASONS[code];
    if (!entry.bans) continue;
    t.ok(entry.kind === 'request' || entry.kind === 'connection', `${code}: a refused request or connection`);
    const status = 'status' in entry ? entry.status : 0;
    t.ok(status >= 400 && status < 500, `${code}: a 4xx (an outage of ours or the upstream's never bans)`);
    t.notOk([408, 413, 429].includes(status), `${code}: not a timeout, a size or a rate limit (load and network trouble)`);
    t.notOk(code.startsWith('LIMIT_') || code.startsWith('ADMIN_') || code.startsWith('INTERNAL'), `${code}: not a ban refusal, admin refusal or pipeline bug`);
  }
});

t.test('events carry no status; every other kind does', async (t) => {
  for (const code of codes) {
    const entry = REASONS[code];
    t.equal('status' in entry, entry.kind !== 'event', code);
  }
});

t.test('the signer never bans, and the missing-prerequisite code is one non-banning 500', async (t) => {
  for (const code of codes) if (REASONS[code].kind === 'signer') t.notOk(REASONS[code].bans, code);
  t.equal(REASONS.INTERNAL_PREREQUISITE_MISSING.status, 500);
  t.notOk(REASONS.INTERNAL_PREREQUISITE_MISSING.bans);
  t.equal(new Rejection('INTERNAL_PREREQUISITE_MISSING').status, 500);
});
