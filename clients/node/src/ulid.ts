// ulid.ts - ULIDs (26 characters of Crockford base32: 48 bits of Unix
// milliseconds, then 80 random bits), the ids the client gives events
// published without one, before the first try: a copy sent again after a
// failover is then a duplicate the server drops. Strictly increasing
// within a process, even within a millisecond or when the clock steps back.
import { getRandomValues } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
let lastMs = 0;
const rand = new Uint8Array(10);

/** A new ULID. */
export function ulid(now: number = Date.now()): string {
  if (now <= lastMs) {
    for (let i = 9; i >= 0 && ++rand[i] === 256; i--) rand[i] = 0;
  } else {
    lastMs = now;
    getRandomValues(rand);
    rand[0] &= 0x7f; // headroom so increments within a ms never wrap
  }
  let out = '';
  let t = lastMs;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[t % 32] + out;
    t = Math.floor(t / 32);
  }
  // 80 bits -> 16 characters, 5 bits at a time from the most significant.
  let acc = 0;
  let bits = 0;
  for (const byte of rand) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}
