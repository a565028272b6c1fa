// Compares the ids (or counts) of the CLI with a reference's, entry by entry, and writes the
// report a failing test prints: mismatches per category and the first few in full.
const SHOWN = 5;

function same(a, b) {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  return a === b;
}

// ENTRIES: [{ category, text }]; EXPECTED/ACTUAL: per entry, an ids array or a count.
// Returns { count, byCategory, report } (report "" when all match).
export function compareIds(label, entries, expected, actual) {
  const byCategory = {};
  const first = [];
  let count = 0;
  entries.forEach((entry, i) => {
    if (same(expected[i], actual[i])) return;
    count += 1;
    byCategory[entry.category] = (byCategory[entry.category] ?? 0) + 1;
    if (first.length < SHOWN) first.push({ entry, expected: expected[i], actual: actual[i] });
  });
  if (count === 0) return { count, byCategory, report: "" };
  const clip = (s) => (s.length > 400 ? `${s.slice(0, 400)}... (${s.length} chars)` : s);
  const lines = [`${label}: ${count} of ${entries.length} differ; by category: ${JSON.stringify(byCategory)}`];
  for (const { entry, expected: e, actual: a } of first) {
    lines.push(`  [${entry.category}] ${clip(JSON.stringify(entry.text))}`);
    lines.push(`    reference: ${clip(JSON.stringify(e))}`);
    lines.push(`    ours:      ${clip(JSON.stringify(a))}`);
    if (Array.isArray(e) && Array.isArray(a)) {
      let at = 0;
      while (at < e.length && e[at] === a[at]) at += 1;
      const near = (ids) => JSON.stringify(ids.slice(Math.max(0, at - 3), at + 6));
      lines.push(`    first difference at id ${at}: reference ${near(e)}, ours ${near(a)}`);
    }
  }
  return { count, byCategory, report: lines.join("\n") };
}
