// The README as a newcomer's index: every document (each Markdown file under docs/, CHANGELOG,
// CONTRIBUTING, LICENSE, the API files and the load tests) is one link away from it, and every
// relative link in the README, CONTRIBUTING, CHANGELOG and docs/ points at something that exists.
// Each check is also shown to report a mistake planted in a copy.
//   cd tests/deploy && node --test links.test.mjs
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const kRepo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const kMustLink = ["CHANGELOG.md", "CONTRIBUTING.md", "LICENSE", "docs/api/openapi.yaml",
  "docs/api/postman-collection.json", "performance/k6/", "performance/jmeter/", "scripts/load-test.sh",
  "scripts/backup-redis.sh"];

// The relative targets of a Markdown text's links, without #anchors.
const Links = (text) => [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1])
  .filter((l) => !/^[a-z]+:/.test(l) && !l.startsWith("#")).map((l) => l.split("#")[0]);

// "file: broken link target" for each link of `file` (repo-relative) whose target is missing.
export function BrokenLinks(file, text) {
  const dir = path.dirname(path.join(kRepo, file));
  return Links(text).filter((l) => !existsSync(path.join(dir, l))).map((l) => `${file}: broken link ${l}`);
}

// The documents the README must link, missing from its links.
export function Unlinked(readme) {
  const linked = new Set(Links(readme).map((l) => path.normalize(l)));
  const docs = readdirSync(path.join(kRepo, "docs"), { recursive: true })
    .filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`);
  return [...docs, ...kMustLink].filter((d) => !linked.has(d)).sort().map((d) => `README.md does not link ${d}`);
}

const kFiles = ["README.md", "CONTRIBUTING.md", "CHANGELOG.md",
  ...readdirSync(path.join(kRepo, "docs"), { recursive: true }).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
const Read = (f) => readFileSync(path.join(kRepo, f), "utf8");

describe("the README and the docs' links", () => {
  test("the README links every document", () => {
    assert.deepEqual(Unlinked(Read("README.md")), []);
  });
  test("the README still starts with the two commands", () => {
    assert.match(Read("README.md"), /^# token-rate-limiter\n\n```sh\nscripts\/demo\.sh .*\nscripts\/test\.sh /);
  });
  for (const file of kFiles) {
    test(`${file}: every relative link resolves`, () => {
      assert.deepEqual(BrokenLinks(file, Read(file)), []);
    });
  }
});

describe("mistakes planted in a copy are reported", () => {
  test("a document the README no longer links, and a link to a moved file", () => {
    const original = Read("README.md");
    const readme = original.replace("(docs/architecture/security.md)", "(docs/security.md)");
    const added = (after, before) => after.filter((p) => !before.includes(p));
    assert.deepEqual(added(Unlinked(readme), Unlinked(original)),
      ["README.md does not link docs/architecture/security.md"]);
    assert.deepEqual(added(BrokenLinks("README.md", readme), BrokenLinks("README.md", original)),
      ["README.md: broken link docs/security.md"]);
  });
});
