// The gateway's approximate token count, for exact expectations: no dependencies, so that the
// benchmark harness (performance/lib/soak.mjs) can import it without the black-box tests' npm
// packages.

// The approximate counter's CountText (src/limits/token_counter.cc, its byte-by-byte loop): runs
// of one byte class cost a token at their start and one more every P bytes (letters 5, digits 1,
// punctuation 2, whitespace 4 with one leading ' ' free, 3-byte UTF-8 2, other bytes 1); the
// count is at least ceil(bytes / 4). "w1" and " w2" cost 2 each, " w10" costs 3.
const LETTERS = 0, DIGITS = 1, PUNCT = 2, SPACE = 3, WIDE = 4, BYTES = 5, CONT = 6;
const PERIOD = [5, 1, 2, 4, 2, 1];
function byteClass(c) {
  if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a)) return LETTERS;
  if (c >= 0x30 && c <= 0x39) return DIGITS;
  if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) return SPACE;
  if (c >= 0x80 && c <= 0xbf) return CONT;
  if (c >= 0xc2 && c <= 0xdf) return LETTERS;
  if (c >= 0xe0 && c <= 0xef) return WIDE;
  if (c >= 0x80) return BYTES;
  return PUNCT;
}
export function approxTokens(text) {
  const bytes = Buffer.from(text, 'utf8');
  let tokens = 0;
  let prev = -1;
  let left = 0;
  let seq = BYTES;
  for (const c of bytes) {
    const raw = byteClass(c);
    const k = raw === CONT ? seq : raw;
    if (raw !== CONT) seq = c < 0x80 ? BYTES : raw;
    if (k !== prev) left = k === SPACE && c === 0x20 ? 1 : 0;
    prev = k;
    if (left === 0) {
      tokens++;
      left = PERIOD[k] - 1;
    } else {
      left--;
    }
  }
  return Math.max(tokens, Math.floor((bytes.length + 3) / 4));
}
