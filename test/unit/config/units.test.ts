import t from 'tap';
import { parseDuration, parseSize } from '../../../src/config/units.ts';

t.test('durations', async (t) => {
  t.equal(parseDuration('300s'), 300_000);
  t.equal(parseDuration('5m'), 300_000);
  t.equal(parseDuration('250ms'), 250);
  t.equal(parseDuration('1h'), 3_600_000);
  t.equal(parseDuration('2d'), 172_800_000);
  t.equal(parseDuration('1.5s'), 1500);
  t.equal(parseDuration(300), 300_000, 'plain number = seconds');
  t.equal(parseDuration('300'), 300_000);
  for (const bad of ['', 's', '-1s', '5 minutes', '5M', '1e3s', 'Infinitys', '5m30s']) t.equal(parseDuration(bad), undefined, bad);
});

t.test('sizes', async (t) => {
  t.equal(parseSize('10MiB'), 10 * 1024 * 1024);
  t.equal(parseSize('512KiB'), 512 * 1024);
  t.equal(parseSize('1GiB'), 1024 ** 3);
  t.equal(parseSize('1MB'), 1_000_000);
  t.equal(parseSize(1024), 1024);
  t.equal(parseSize('1024'), 1024);
  for (const bad of ['', 'MiB', '1.5MiB', '-1', '10 mb', '10mib', '99999999999999999999']) t.equal(parseSize(bad), undefined, bad);
});
