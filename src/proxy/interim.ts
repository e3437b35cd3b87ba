/**
 * Interim (1xx) answers from the upstream, removed before undici's HTTP/1.1 parser reads them.
 *
 * RFC 9110 section 15.2: "A client MUST be able to parse one or more 1xx responses received prior
 * to a final response, even if the client does not expect one." undici parses 102 and 103 (and
 * the forward stage skips them), but destroys the connection on a `100 Continue` ("bad
 * response": it never sends Expect, and supporting 100 is wontfix, nodejs/undici#197), which
 * made a backup that always sends one unusable (502). No option turns that off, so the
 * connection's socket gets this small filter (hand-written for that reason): at the start of
 * each answer, complete `HTTP/1.x 1xx` heads other than 101 are dropped, 102 and 103 included
 * (a 100 after a 103 would break the parser as well).
 *
 * "The start of each answer" needs no parsing of the answers themselves: the pool runs one
 * request per connection at a time (pipelining 1), so an answer begins after its request's head
 * was written (undici writes the head as a string starting with the request line; the guard's
 * bodies are Buffers), and ends the filter's interest at its first byte that is not an interim head.
 */
import type { Socket } from 'node:net';

/** An interim head longer than this is not skipped: undici then refuses it (502). */
const MAX_INTERIM_HEAD = 16 * 1024;
const EMPTY = Buffer.alloc(0);
const CRLFCRLF = Buffer.from('\r\n\r\n');
const REQUEST_LINE = /^[A-Z]+ /;

/**
 * The length of the complete interim head `buf` starts with; 0 when more bytes are needed to
 * tell; -1 when it does not start with one (a final answer, or something undici will judge).
 */
export function interimHeadLength(buf: Buffer): number {
  // "HTTP/1.1 100 " : HTTP-version SP status-code SP (RFC 9112 section 4).
  const prefix = 'HTTP/1.';
  for (let i = 0; i < Math.min(buf.length, 13); i++) {
    const c = buf[i]!;
    const ok = i < 7 ? c === prefix.charCodeAt(i)
      : i === 7 ? c >= 0x30 && c <= 0x39
      : i === 8 || i === 12 ? c === 0x20
      : i === 9 ? c === 0x31 /* 1 */
      : c >= 0x30 && c <= 0x39;
    if (!ok) return -1;
  }
  if (buf.length < 13) return 0;
  if (buf[10] === 0x30 && buf[11] === 0x31) return -1; // 101 Switching Protocols is final for its connection.
  const end = buf.indexOf(CRLFCRLF, 12);
  if (end < 0) return buf.length > MAX_INTERIM_HEAD ? -1 : 0;
  return end + CRLFCRLF.length;
}

/** Wraps `socket.write` and `socket.read` (what undici's HTTP/1.1 client calls) to drop interim heads. */
export function skipInterimResponses(socket: Socket): void {
  let armed = false;
  let pending: Buffer | undefined;
  const write = socket.write;
  socket.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    // A request line ("POST /path HTTP/1.1"), not a chunk-size line of a streamed body.
    if (typeof chunk === 'string' && REQUEST_LINE.test(chunk)) armed = true;
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as Socket['write'];
  const read = socket.read;
  socket.read = function (this: Socket, size?: number) {
    for (;;) {
      const chunk = read.call(this, size) as Buffer | null;
      if (!armed || chunk === null) return chunk;
      let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
      pending = undefined;
      while (armed && buf.length > 0) {
        const n = interimHeadLength(buf);
        if (n < 0) armed = false;
        else if (n === 0) {
          pending = buf;
          buf = EMPTY;
        } else buf = buf.subarray(n);
      }
      if (buf.length > 0) return buf;
      // Everything so far was interim (or is held until its head is complete): read on.
    }
  };
}
