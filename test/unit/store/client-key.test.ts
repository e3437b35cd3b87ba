import t from 'tap';
import { addressKey, parseBanKey, popKey } from '../../../src/store/client-key.ts';

t.test('address keys: IPv4 as is, IPv6 per /64', async (t) => {
  t.equal(addressKey('203.0.113.9'), 'addr:203.0.113.9');
  t.equal(addressKey('2001:db8:0:5:1:2:3:4'), 'addr:2001:db8:0:5::/64');
  t.equal(addressKey('2001:db8::1'), 'addr:2001:db8:0:0::/64');
  t.equal(addressKey('2001:DB8:0:5::9'), 'addr:2001:db8:0:5::/64', 'one spelling per block');
  t.equal(addressKey('::1'), 'addr:0:0:0:0::/64');
  t.equal(addressKey('fe80::1%eth0'), 'addr:fe80:0:0:0::/64', 'zone id dropped');
  t.equal(addressKey('64:ff9b::192.0.2.1'), 'addr:64:ff9b:0:0::/64');
  t.equal(popKey('calgary-01'), 'pop:calgary-01');
});

t.test('ban keys an operator may write', async (t) => {
  t.equal(parseBanKey('pop:calgary-01'), 'pop:calgary-01');
  t.equal(parseBanKey('addr:203.0.113.9'), 'addr:203.0.113.9');
  t.equal(parseBanKey('addr:2001:db8:0:5::/64'), 'addr:2001:db8:0:5::/64');
  for (const bad of ['calgary-01', 'pop:', 'pop:../x', 'addr:', 'addr:evil\nkey', 'ban:x']) t.equal(parseBanKey(bad), undefined, bad);
});
