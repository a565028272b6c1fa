import { tiktokenPair, reference, rawLlama3, JS_WHITESPACE_DIFFERENCES } from "./lib/references.mjs";
import { corpus } from "./lib/corpus.mjs";
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);
let t = Date.now();
const l3 = reference("llama3"), raw = rawLlama3();
let d = 0, dw = 0;
for (const e of corpus()) { if (!eq(l3.encode(e.text), raw.encode(e.text))) { d++; if (JS_WHITESPACE_DIFFERENCES.test(e.text)) dw++; } }
console.log("llama3 patched vs raw differ", d, "of which with 85/feff", dw, Date.now() - t);
for (const enc of ["cl100k_base", "o200k_base"]) {
  t = Date.now(); const p = tiktokenPair(enc); let a = 0, b = 0, bw = 0;
  for (const e of corpus()) { if (e.category === "long") continue; const n = p.npm(e.text);
    if (!eq(n, p.js(e.text))) a++; if (!eq(n, p.jsRaw(e.text))) { b++; if (JS_WHITESPACE_DIFFERENCES.test(e.text)) bw++; } }
  console.log(enc, "npm vs js patched differ", a, "npm vs raw differ", b, bw, Date.now() - t);
}
