import { corpus } from "./lib/corpus.mjs";
import { reference, tiktokenPair, TOKENIZERS } from "./lib/references.mjs";
const c = corpus();
for (const name of TOKENIZERS) {
  let t = Date.now(); const r = reference(name); r.encode("x"); const load = Date.now() - t;
  t = Date.now(); let n = 0; let slow = [];
  for (const e of c) { const t0 = Date.now(); n += r.encode(e.text).length; const dt = Date.now() - t0; if (dt > 50) slow.push([e.category, e.text.length, dt]); }
  console.log(name, "load", load, "encode", Date.now() - t, "ms", n, "tokens", slow);
}
for (const enc of ["cl100k_base", "o200k_base"]) {
  const p = tiktokenPair(enc); let t = Date.now(); let diff = 0, slow=[];
  for (const e of c) { const t0 = Date.now(); const a = p.js(e.text); const dt = Date.now() - t0; if (dt > 50) slow.push([e.category, e.text.length, dt]); if (JSON.stringify(a) !== JSON.stringify(p.npm(e.text))) { diff++; if (diff < 5) console.log("DIFF", enc, e.category, JSON.stringify(e.text)); } }
  console.log(enc, "js+npm", Date.now() - t, "ms, disagreements", diff, slow);
}
