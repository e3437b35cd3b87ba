import t from 'tap';
import type { Socket } from 'node:net';
import { interimHeadLength, skipInterimResponses } from '../../../src/proxy/interim.ts';

t.test('interimHeadLength', async (t) => {
  const b = (s: string) => Buffer.from(s, 'latin1');
  t.equal(interimHeadLength(b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200')), 25);
  t.equal(interimHeadLength(b('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n')), 40);
  t.equal(interimHeadLength(b('HTTP/1.0 102 \r\n\r\n')), 17);
  t.equal(interimHeadLength(b('HTTP/1.1 200 OK\r\n\r\n')), -1, 'a final answer');
  t.equal(interimHeadLength(b('HTTP/1.1 101 Switching Protocols\r\n\r\n')), -1, '101 is not interim');
  t.equal(interimHeadLength(b('HTTP/2.0 100 x\r\n\r\n')), -1);
  t.equal(interimHeadLength(b('HTTP/1.1 1')), 0, 'too short to tell');
  t.equal(interimHeadLength(b('HTTP/1.1 100 Continue\r\n')), 0, 'head not complete');
  t.equal(interimHeadLength(b('HTTX')), -1);
  t.equal(interimHeadLength(Buffer.concat([b('HTTP/1.1 100 x\r\nX: '), Buffer.alloc(17 * 1024, 0x61)])), -1, 'an endless interim head is left to undici');
});

t.test('skipInterimResponses drops interim heads at the start of an answer, split anywhere', async (t) => {
  const answer = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n';
  const final = answer.slice(answer.indexOf('HTTP/1.1 200'));
  for (const size of [1, 3, 7, 13, 40, answer.length]) {
    // A fake socket: writes go nowhere, reads come from `incoming`.
    const incoming: Buffer[] = [];
    for (let i = 0; i < answer.length; i += size) incoming.push(Buffer.from(answer.slice(i, i + size), 'latin1'));
    const socket = { write: () => true, read: () => incoming.shift() ?? null } as unknown as Socket;
    skipInterimResponses(socket);
    socket.write('POST / HTTP/1.1\r\n\r\n');
    let seen = '';
    for (let c = socket.read() as Buffer | null; c !== null || incoming.length > 0; c = socket.read() as Buffer | null) {
      if (c) seen += c.toString('latin1');
    }
    t.equal(seen, final, `chunks of ${size}: the final answer whole, a 100 inside its body kept`);
  }
});

t.test('skipInterimResponses is armed by a request line only', async (t) => {
  const incoming = [Buffer.from('HTTP/1.1 100 Continue\r\n\r\n')];
  const socket = { write: () => true, read: () => incoming.shift() ?? null } as unknown as Socket;
  skipInterimResponses(socket);
  socket.write(Buffer.from('body'));
  socket.write('1a\r\n');
  t.equal(String(socket.read()), 'HTTP/1.1 100 Continue\r\n\r\n', 'unarmed: passed through for undici to judge');
});
