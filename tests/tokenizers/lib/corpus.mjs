// The comparison corpus: generated from a fixed seed (nothing vendored), the same strings on
// every run, in named categories so a mismatch report says which kind of text broke. Each
// category stresses a different part of a tokenizer: the pre-tokenizer regex (contractions,
// digit runs, whitespace lookahead, letter classes), byte-level and byte-fallback encoding
// (CJK, emoji, combining marks, random code points), added/special token matching
// (look-alikes), and the BPE merge loop on long words.

import fs from "node:fs";

// mulberry32: small, fast, good enough to spread choices; fixed seed = fixed corpus.
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)); // inclusive
  const pick = (list) => list[Math.floor(next() * list.length)];
  const chance = (p) => next() < p;
  const times = (n, f) => Array.from({ length: n }, (_, i) => f(i));
  return { next, int, pick, chance, times };
}

const WORDS = (
  "the of and to in is was he for it with as his on be at by had are but from or have an they " +
  "which one you were her all she there would their we him been has when who will more no if " +
  "out so said what up its about into than them can only other new some could time these two " +
  "may then do first any my now such like our over man me even most made after also did many " +
  "before must through back years where much your way well down should because each just those " +
  "people how too little state good very make world still own see men work long get here " +
  "between both life being under never day same another know while last might us great old " +
  "year off come since against go came right used take three gateway token limit request " +
  "budget tenant model server latency throughput quota window burst refill bucket counter"
).split(" ");
const CONTRACTIONS = ["'ſ", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D", "’s", "’ll"];
const CONTRACTED = ["it's", "don't", "they're", "we've", "I'm", "you'll", "he'd", "IT'S", "DON'T",
  "THEY'LL", "We'D", "can't", "won't", "o'clock", "rock'n'roll", "'tis", "the '90s", "Charles'"];
const PUNCT = [".", ",", ";", ":", "!", "?", "...", " -", " —", "–", "\"", "'", "(", ")", "[", "]", "…", "«", "»", "“", "”"];

function capitalize(word) {
  return word[0].toUpperCase() + word.slice(1);
}

function sentence(r) {
  const words = r.times(r.int(3, 18), () => {
    if (r.chance(0.08)) return r.pick(CONTRACTED);
    let w = r.pick(WORDS);
    if (r.chance(0.06)) w += r.pick(CONTRACTIONS);
    if (r.chance(0.04)) w = w.toUpperCase();
    if (r.chance(0.05)) w += r.pick(PUNCT);
    return w;
  });
  words[0] = capitalize(words[0]);
  return words.join(" ") + r.pick([".", ".", ".", "!", "?", "...", ":", ""]);
}

function prose(r) {
  const n = r.int(1, 5);
  let text = r.times(n, () => sentence(r)).join(r.pick([" ", " ", "  ", "\n", "\n\n"]));
  if (r.chance(0.15)) text = `"${text}"`;
  if (r.chance(0.1)) text = `(${text})`;
  return text;
}

const IDENTS = ["i", "n", "count", "buf", "len", "value", "result", "items", "key", "tokens", "self",
  "ctx", "_private", "__init__", "camelCase", "snake_case", "CONSTANT_NAME", "x1", "y2", "tmp"];
const INDENTS = ["", "  ", "    ", "        ", "\t", "\t\t", " \t", "\t  "];

function codeC(r, nl, ind) {
  const id = r.pick(IDENTS);
  return [
    `#include <${r.pick(["stdio.h", "stdlib.h", "string.h"])}>`,
    `static int ${id}_${r.int(0, 99)}(const char *${r.pick(IDENTS)}, size_t n) {`,
    `${ind}for (size_t i = 0; i < n; ++i) {`,
    `${ind}${ind}if (${id}[i] == '\\0' || ${id}[i] != 0x${r.int(0, 255).toString(16)}) return -1;`,
    `${ind}}`,
    `${ind}/* ${sentence(r)} */`,
    `${ind}return ${r.int(0, 100000)} >> 2; // ${r.pick(WORDS)}`,
    "}",
  ].slice(0, r.int(2, 8)).join(nl);
}

function codePython(r, nl, ind) {
  const id = r.pick(IDENTS);
  return [
    `def ${id}(${r.pick(IDENTS)}, *args, **kwargs) -> dict[str, int]:`,
    `${ind}"""${sentence(r)}"""`,
    `${ind}if not ${id}:`,
    `${ind}${ind}raise ValueError(f"bad {${id}!r}: {len(args)}")`,
    `${ind}return {k: v ** 2 for k, v in kwargs.items() if v >= ${r.int(0, 999)}}`,
    "",
    `print(${id}([1, 2.5, -3e10], key='${r.pick(WORDS)}'))  # ${r.pick(WORDS)}`,
  ].slice(0, r.int(2, 7)).join(nl);
}

function codeJs(r, nl, ind) {
  const id = r.pick(IDENTS);
  return [
    `export async function ${id}(${r.pick(IDENTS)} = {}) {`,
    `${ind}const { a, b = ${r.int(0, 9)} } = await fetch(\`/v1/\${${id}}\`).then((res) => res.json());`,
    `${ind}return a?.b ?? [...b].map(x => x === null ? undefined : x * 2) || !0;`,
    `}`,
    `const re = /[\\p{L}\\s]+$/u; let s = '${r.pick(WORDS)}'; s += "\\n";`,
  ].slice(0, r.int(2, 5)).join(nl);
}

function codeJson(r, nl, ind) {
  const obj = {
    model: r.pick(["llama-3-8b", "gpt-4o", "m"]),
    messages: [{ role: r.pick(["user", "system"]), content: sentence(r) }],
    max_tokens: r.int(1, 4096),
    temperature: r.int(0, 20) / 10,
    stream: r.chance(0.5),
    stop: r.chance(0.5) ? null : ["\n", "</s>"],
  };
  return r.chance(0.5) ? JSON.stringify(obj) : JSON.stringify(obj, null, ind || 2).replaceAll("\n", nl);
}

function code(r) {
  const nl = r.pick(["\n", "\n", "\n", "\r\n"]);
  const ind = r.pick(INDENTS);
  return r.pick([codeC, codePython, codeJs, codeJson])(r, nl, ind);
}

function digits(r, n) {
  let s = String(r.int(1, 9));
  while (s.length < n) s += String(r.int(0, 9));
  return s.slice(0, n);
}

function thousands(s) {
  return s.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

const OTHER_NUMBERS = ["٠١٢٣٤٥٦٧٨٩", "०१२३४५", "１２３４５", "²³¹", "½¾⅓", "ⅠⅡⅢⅫ", "①②③", "𝟘𝟙𝟚", "〇一二三"];

function numbers(r) {
  const n = r.int(1, 40);
  switch (r.int(0, 11)) {
    case 0: return digits(r, n);
    case 1: return `${digits(r, r.int(1, 12))}.${digits(r, r.int(1, 12))}`;
    case 2: return thousands(digits(r, r.int(4, 20)));
    case 3: return `${r.pick(["-", "+", "", "$", "€", "£"])}${thousands(digits(r, r.int(1, 10)))}.${digits(r, 2)}`;
    case 4: return `${r.int(1, 9)}.${digits(r, r.int(1, 6))}e${r.pick(["-", "+", ""])}${r.int(0, 308)}`;
    case 5: return `${r.int(1990, 2040)}-${String(r.int(1, 12)).padStart(2, "0")}-${String(r.int(1, 28)).padStart(2, "0")}T${r.int(10, 23)}:${r.int(10, 59)}:${r.int(10, 59)}.${digits(r, 3)}Z`;
    case 6: return `v${r.int(0, 20)}.${r.int(0, 99)}.${r.int(0, 999)}`;
    case 7: return `0x${digits(r, r.int(1, 16))}${r.pick(["ff", "DEAD", "beef", ""])}`;
    case 8: return `${r.pick(WORDS)}${digits(r, n)}${r.pick(WORDS)}`;
    case 9: return `${r.pick(OTHER_NUMBERS)}${r.pick(["", " ", "."])}${digits(r, r.int(1, 8))}`;
    case 10: return r.times(r.int(2, 8), () => digits(r, r.int(1, 7))).join(r.pick([" ", ", ", "\n", "\t", "/", ":"]));
    default: return `${r.int(1, 999)} ${r.pick(WORDS)} ${digits(r, n)}${r.pick(["%", "", " km", "ms", "th"])}`;
  }
}

const SPACES = [" ", "  ", "   ", "\t", "\t\t", " \t ", "\n", "\r\n", "\n\n\n", "\r", "\r\n\r\n",
  "\u00a0", "\u3000", "\u2028", "\u2029", "\v", "\f", "\u0085", "\u2003", "\u200b", "\ufeff",
  "        ", "\n    ", "\n\t", " \n", "  \n  ", "\t\n"];

function whitespace(r) {
  const parts = [];
  if (r.chance(0.5)) parts.push(r.pick(SPACES));
  for (let i = r.int(0, 6); i > 0; --i) {
    parts.push(r.chance(0.7) ? r.pick(WORDS) : r.pick([".", "!", "123", "中文", "é", "x"]));
    parts.push(r.times(r.int(1, 3), () => r.pick(SPACES)).join(""));
  }
  if (r.chance(0.3)) parts.push(r.pick(WORDS));
  const text = parts.join("");
  return text || r.pick(SPACES);
}

// The code points Unicode 14.0 had assigned, from Debian's unicode-data (DerivedAge.txt).
// PCRE2 10.42, which runs the gateway's split expressions, has Unicode 14.0's tables; Node (the
// JS references) and tiktoken's Rust regex have Unicode 16's. A character assigned since (CJK
// Extension H, Egyptian Hieroglyphs Extended-A, ...) is a letter to them and unassigned to PCRE2:
// the random code points are drawn from what both agree on, and identity.test.mjs shows the
// difference on such characters apart.
const DERIVED_AGE = "/usr/share/unicode/DerivedAge.txt";
let unicode14;
export function assignedByUnicode14(cp) {
  if (!unicode14) {
    let text;
    try {
      text = fs.readFileSync(DERIVED_AGE, "utf8");
    } catch {
      throw new Error(`${DERIVED_AGE} is missing: install Debian's unicode-data (scripts/setup.sh does)`);
    }
    unicode14 = [];
    for (const m of text.matchAll(/^([0-9A-F]+)(?:\.\.([0-9A-F]+))?\s*;\s*(\d+)\.(\d+)/gm)) {
      const [major, minor] = [Number(m[3]), Number(m[4])];
      if (major < 14 || (major === 14 && minor === 0)) {
        unicode14.push([parseInt(m[1], 16), parseInt(m[2] ?? m[1], 16)]);
      }
    }
  }
  return unicode14.some(([lo, hi]) => cp >= lo && cp <= hi);
}

// Assigned in Node's Unicode and not in 14.0: where PCRE2's tables differ from the references'.
export function newerThanUnicode14(cp) {
  return !/\p{Cn}/u.test(String.fromCodePoint(cp)) && !assignedByUnicode14(cp);
}

function range(r, lo, hi) {
  for (;;) {
    const cp = r.int(lo, hi);
    if (!newerThanUnicode14(cp)) return String.fromCodePoint(cp);
  }
}

const CHINESE = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴具";
const KANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんがぎぐげござじずぜぞだぢづでどばびぶべぼぱぴぷぺぽゃゅょっアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポャュョッヴー";
const CJK_PUNCT = ["。", "、", "「", "」", "！", "？", "（", "）", "：", "；", "・", "〜", "…", " ", "　"];

function chars(r, alphabet, n) {
  return r.times(n, () => alphabet[r.int(0, alphabet.length - 1)]).join("");
}

function cjk(r) {
  const parts = r.times(r.int(1, 6), () => {
    switch (r.int(0, 4)) {
      case 0: return chars(r, CHINESE, r.int(1, 20));
      case 1: return chars(r, KANA, r.int(1, 12)) + chars(r, CHINESE, r.int(0, 3));
      case 2: return r.times(r.int(1, 8), () => range(r, 0x4e00, 0x9fff)).join("");
      case 3: return r.times(r.int(1, 4), () => range(r, 0x20000, 0x2a6df)).join(""); // Extension B
      default: return r.pick([r.pick(WORDS), String(r.int(0, 9999)), "ＡＢＣ", "ｶﾀｶﾅ"]);
    }
  });
  return parts.join(r.pick(CJK_PUNCT));
}

const HANGUL_WORDS = ["안녕하세요", "한국어", "토큰", "제한", "서버", "모델", "요청", "감사합니다", "사랑", "읽다"];

function korean(r) {
  const words = r.times(r.int(1, 10), () => (r.chance(0.5)
    ? r.pick(HANGUL_WORDS)
    : r.times(r.int(1, 5), () => range(r, 0xac00, 0xd7a3)).join("")));
  if (r.chance(0.15)) words.push("\u1100\u1161\u11a8"); // conjoining jamo (decomposed 각)
  if (r.chance(0.1)) words.push("ㄱㄴㄷㅏㅑ"); // compatibility jamo
  return words.join(r.pick([" ", " ", ", ", ". ", "\n", "?"])) + r.pick(["", ".", "!", "?", "요."]);
}

const EMOJI = ["😀", "😂", "🥲", "❤️", "👍", "🔥", "🚀", "✨", "🎉", "🙏", "👀", "💯", "🤖", "🧠", "☕", "⚠️", "✅", "❌", "©️", "™️", "↩️"];
const ZWJ = ["👨‍👩‍👧‍👦", "👩‍❤️‍👨", "👨‍👨‍👧", "🧑‍💻", "👩🏽‍🚀", "🏳️‍🌈", "🏴‍☠️", "👁️‍🗨️", "🧔‍♂️", "🐕‍🦺", "😶‍🌫️"];
const SKIN = ["\u{1F3FB}", "\u{1F3FC}", "\u{1F3FD}", "\u{1F3FE}", "\u{1F3FF}"];
const HANDS = ["👋", "👍", "🤝", "✋", "👏", "🙌", "🧑"];
const FLAGS = ["US", "FR", "JP", "KR", "DE", "BR", "IN", "UA", "ZA", "CN"];
const TAG_FLAGS = ["🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}", "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}"];

function flag(code) {
  return [...code].map((c) => String.fromCodePoint(0x1f1e6 + c.charCodeAt(0) - 65)).join("");
}

function emoji(r) {
  const parts = r.times(r.int(1, 8), () => {
    switch (r.int(0, 6)) {
      case 0: return r.pick(EMOJI);
      case 1: return r.pick(ZWJ);
      case 2: return r.pick(HANDS) + r.pick(SKIN);
      case 3: return flag(r.pick(FLAGS));
      case 4: return `${r.pick("0123456789#*")}\ufe0f\u20e3`; // keycap
      case 5: return r.pick(TAG_FLAGS);
      default: return r.pick(WORDS);
    }
  });
  return parts.join(r.pick(["", "", " ", "\n", "!"]));
}

const COMBINING_WORDS = ["e\u0301", "cafe\u0301", "nai\u0308ve", "Tiếng Việt", "Tie\u0302\u0301ng Vie\u0323\u0302t",
  "Người", "Nguye\u0302\u0303n", "đường phố", "नमस्ते", "हिन्दी", "क्षत्रिय", "संस्कृतम्", "שָׁלוֹם", "مَرْحَبًا",
  "ภาษาไทย", "Å", "A\u030a", "n\u0303", "ñ", "ǅ", "ﬁ", "Z\u0351\u0337\u0323a\u0362\u0316l\u0334g\u0335o\u033c"];

function combining(r) {
  const parts = r.times(r.int(1, 6), () => {
    switch (r.int(0, 3)) {
      case 0: return r.pick(COMBINING_WORDS);
      case 1: return r.pick("aeiouyAEIOU") + r.times(r.int(1, 6), () => range(r, 0x300, 0x36f)).join("");
      case 2: return range(r, 0x915, 0x939) + r.pick(["\u094d", "\u093e", "\u093f", "\u0940", "\u0902", "\u094d\u0937"]);
      default: return r.pick(WORDS);
    }
  });
  return parts.join(r.pick([" ", "", ", "]));
}

const SCRIPT_WORDS = {
  latin: ["hello", "Straße", "façade", "Ærøskøbing"],
  cyrillic: ["привет", "Москва", "ёжик", "ЩЁЛКОВО"],
  greek: ["γειά", "Ελλάδα", "λόγος", "ΣΊΣΥΦΟΣ"],
  arabic: ["مرحبا", "العربية", "كتاب"],
  hebrew: ["שלום", "עברית", "ספר"],
  thai: ["สวัสดี", "ภาษาไทย", "ครับ"],
  other: ["Ἀθῆναι", "ქართული", "Հայերեն", "ᏣᎳᎩ", "ⴰⵣⵓⵍ", "𐌰𐌱𐌲", "ℌ𝔢𝔩𝔩𝔬", "ｈｅｌｌｏ"],
};
const SCRIPT_NAMES = Object.keys(SCRIPT_WORDS);

function mixedScripts(r) {
  const words = r.times(r.int(3, 12), () => r.pick(SCRIPT_WORDS[r.pick(SCRIPT_NAMES)]));
  return words.join(r.pick([" ", "", "-", " / ", "\n"]));
}

export const SPECIAL_TEXTS = ["<s>", "</s>", "<unk>", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
  "<|start_header_id|>", "<|end_header_id|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>",
  "<|fim_prefix|>", "<|endofprompt|>", "<|reserved_special_token_5|>", "<|python_tag|>"];
const PARTIAL_SPECIALS = ["<|eot_id", "eot_id|>", "<|eot_id |>", "<s ", "< s>", "<S>", "</ s>", "<unk",
  "<|begin_of_text", "<|BEGIN_OF_TEXT|>", "<|endoftext", "|>", "<|", "<<SYS>>", "[INST]", "[/INST]",
  "<|im_start|", "<<s>>", "<s><s>", "<|<|eot_id|>|>", "<|start_header_id|>user<|end_header_id|>"];

function specials(r) {
  const parts = r.times(r.int(1, 6), () => {
    switch (r.int(0, 3)) {
      case 0: return r.pick(SPECIAL_TEXTS);
      case 1: return r.pick(PARTIAL_SPECIALS);
      case 2: return r.pick(WORDS);
      default: return r.pick(["\n", " ", "\n\n", "!", "x", "123", "中"]);
    }
  });
  return parts.join(r.pick(["", "", " ", "\n"]));
}

function randomUnicode(r) {
  const n = r.int(1, 40);
  let s = "";
  for (let i = 0; i < n; ++i) {
    switch (r.int(0, 5)) {
      case 0: s += range(r, 0x20, 0x7e); break;
      case 1: s += range(r, 0x0, 0x2ff); break;
      case 2: s += range(r, 0x300, 0xd7ff); break;
      case 3: s += range(r, 0xe000, 0xffff); break;
      case 4: s += range(r, 0x10000, 0x10ffff); break;
      default: s += r.pick([" ", "\n", "'s", "  ", "\t"]);
    }
  }
  return s;
}

// A few strings of 2-20 KB: long lines and long words stress the BPE merge loop and the regex.
function longStrings(r) {
  return [
    "a".repeat(8000),
    "1".repeat(6000),
    " ".repeat(4000) + "x",
    "\n".repeat(3000),
    "ab".repeat(5000),
    r.times(120, () => sentence(r)).join(" "),
    r.times(2000, () => r.pick("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")).join(""),
    chars(r, CHINESE, 3000),
    r.times(600, () => r.pick(ZWJ)).join(""),
    r.times(60, () => code(r)).join("\n"),
    "é".repeat(3000),
    "\u0301".repeat(2000),
  ];
}

function singleChars() {
  const out = [];
  for (let c = 0; c < 0x80; ++c) out.push(String.fromCharCode(c));
  for (let c = 0xa0; c < 0x100; ++c) out.push(String.fromCharCode(c));
  out.push("中", "あ", "ア", "한", "ㄱ", "é", "\u0301", "😀", "🇺", "\u200d", "\ufe0f", "\u00a0", "\u3000",
    "\u2028", "\ufeff", "\ufffd", "\uffff", "\ue000", "\u{10ffff}", "\u{1f3fb}", "€", "ß", "İ", "ı", "ﬀ",
    "ʼ", "’", "·", "\u0085", "\u180e", "\u{e0001}", "\u{20000}", "\u{1d400}", "א", "ب", "ก", "क", "Ω");
  return out;
}

const GENERATORS = {
  prose: [prose, 1300],
  code: [code, 900],
  numbers: [numbers, 1000],
  whitespace: [whitespace, 1000],
  cjk: [cjk, 700],
  korean: [korean, 500],
  emoji: [emoji, 700],
  combining: [combining, 700],
  mixed_scripts: [mixedScripts, 600],
  special_lookalikes: [specials, 900],
  random_unicode: [randomUnicode, 1500],
};

export const SEED = 0x7e57c0de;
let cached = null;

// [{ category, text }], at least 10,000 entries, the same on every call and every run.
export function corpus() {
  if (cached) return cached;
  const r = prng(SEED);
  const out = [{ category: "empty", text: "" }];
  for (const text of singleChars()) out.push({ category: "single_chars", text });
  for (const [category, [generate, count]] of Object.entries(GENERATORS)) {
    for (let i = 0; i < count; ++i) out.push({ category, text: generate(r) });
  }
  for (const text of longStrings(r)) out.push({ category: "long", text });
  cached = out;
  return out;
}

export function countByCategory(entries) {
  const counts = {};
  for (const { category } of entries) counts[category] = (counts[category] ?? 0) + 1;
  return counts;
}

// Invalid UTF-8 (only reachable through the raw stdin mode): each case is a Buffer.
export function invalidUtf8() {
  const b = (...parts) => Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : Buffer.from(p))));
  const cases = {
    lone_continuation_80: b([0x80]),
    lone_continuation_bf: b([0xbf]),
    two_continuations: b([0x80, 0x80]),
    continuation_in_word: b("a", [0x80], "b"),
    continuation_run: b("x", Array(100).fill(0x80), "y"),
    truncated_2byte_at_end: b("caf", [0xc3]),
    truncated_3byte: b([0xe2, 0x82]),
    truncated_3byte_then_ascii: b([0xe2, 0x82], "abc"),
    truncated_4byte: b([0xf0, 0x9f, 0x98]),
    truncated_4byte_then_emoji: b([0xf0, 0x9f, 0x98], "😀"),
    lead_then_space: b([0xe2], " €"),
    overlong_slash_c0af: b([0xc0, 0xaf]),
    overlong_c1bf: b([0xc1, 0xbf]),
    overlong_3byte: b([0xe0, 0x80, 0xaf]),
    overlong_4byte: b([0xf0, 0x80, 0x80, 0xaf]),
    overlong_3byte_max: b([0xe0, 0x9f, 0xbf]),
    overlong_nul: b("a", [0xc0, 0x80], "b"),
    surrogate_high: b([0xed, 0xa0, 0x80]),
    surrogate_low: b([0xed, 0xbf, 0xbf]),
    surrogate_pair_cesu: b([0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]),
    surrogate_in_text: b("hi ", [0xed, 0xa0, 0x80], " there"),
    above_10ffff: b([0xf4, 0x90, 0x80, 0x80]),
    f5: b([0xf5]),
    f8_5byte: b([0xf8, 0x88, 0x80, 0x80, 0x80]),
    fc_6byte: b([0xfc, 0x84, 0x80, 0x80, 0x80, 0x80]),
    fe: b([0xfe]),
    ff: b([0xff]),
    fe_ff_bom_like: b([0xfe, 0xff], "text"),
    ff_fe_bom_like: b([0xff, 0xfe], "t\0e\0"),
    all_f5_to_ff: b(Array.from({ length: 11 }, (_, i) => 0xf5 + i)),
    latin1_text: b([0x63, 0x61, 0x66, 0xe9, 0x20, 0x6e, 0x61, 0xef, 0x76, 0x65]),
    mixed_valid_invalid: b("héllo ", [0xff], " wörld"),
    cjk_broken: b("中", [0x80], "文", [0xe6, 0x96]),
    emoji_cut_in_zwj: b("👨‍👩", [0xe2, 0x80], "👧"),
    invalid_between_specials: b("<|eot_id|>", [0xff], "<|eot_id|>"),
    invalid_in_special: b("<|eot", [0x80], "_id|>"),
    invalid_before_newline: b("line", [0xc3], "\n", [0xc3, 0x28]),
    c3_28: b([0xc3, 0x28]),
    a0_a1: b([0xa0, 0xa1]),
    e2_28_a1: b([0xe2, 0x28, 0xa1]),
    e2_82_28: b([0xe2, 0x82, 0x28]),
    f0_28_8c_bc: b([0xf0, 0x28, 0x8c, 0xbc]),
    f0_90_28_bc: b([0xf0, 0x90, 0x28, 0xbc]),
    f0_28_8c_28: b([0xf0, 0x28, 0x8c, 0x28]),
    digits_broken: b("12345", [0x80], "67890"),
    spaces_broken: b("   ", [0xff], "   \n"),
    only_invalid_long: b(Array(64).fill(0xff)),
  };
  const r = prng(SEED ^ 0x55);
  const out = Object.entries(cases).map(([name, bytes]) => ({ name, bytes }));
  while (out.length < Object.keys(cases).length + 6) {
    const bytes = Buffer.from(r.times(r.int(1, 40), () => r.int(0, 255)));
    const valid = Buffer.from(new TextDecoder().decode(bytes)).equals(bytes);
    if (!valid) out.push({ name: `random_bytes_${out.length}`, bytes });
  }
  return out;
}
