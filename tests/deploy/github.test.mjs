// The GitHub files (.github/), checked offline: yamllint (Debian) on every YAML file with the
// repo's .yamllint; every workflow against SchemaStore's github-workflow.json schema (from
// @action-validator/core); the issue forms and their config against GitHub's form syntax; and
// what no schema sees: the repo scripts a step runs exist and accept its options, actions are
// pinned to exact versions, the CI workflow runs the suite as .ci/run does, the CD workflow
// builds docker/Dockerfile on tags. Each check is also shown to report a mistake planted in a
// copy.
//   cd tests/deploy && npm ci && node --test github.test.mjs
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import {
  CheckIssueConfig, CheckIssueForm, CheckWorkflowSchema, CheckWorkflowSemantics, LoadYaml, RunsCommand,
  Yamllint,
} from "./lib/github.mjs";

const kRepo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const kGithub = path.join(kRepo, ".github");
const kWorkflows = path.join(kGithub, "workflows");
const kTemplates = path.join(kGithub, "ISSUE_TEMPLATE");
const kWorkflowFiles = ["cd.yml", "ci.yml", "dependency-check.yml", "security-scan.yml"];
const kForms = ["bug_report.yml", "feature_request.yml", "question.yml"];
const Workflow = (name) => LoadYaml(path.join(kWorkflows, name));
const Text = (name) => readFileSync(path.join(kWorkflows, name), "utf8");

const scratch = mkdtempSync(path.join(tmpdir(), "trl-github-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe(".github/", () => {
  test("holds the four workflows, the three issue forms, their config and the PR template", () => {
    assert.deepEqual(readdirSync(kWorkflows).sort(), kWorkflowFiles);
    assert.deepEqual(readdirSync(kTemplates).sort(), [...kForms, "config.yml"].sort());
    assert.match(readFileSync(path.join(kGithub, "PULL_REQUEST_TEMPLATE.md"), "utf8"), /fails without this change/);
  });

  test("every YAML file passes yamllint (.yamllint)", () => {
    assert.deepEqual(Yamllint(kRepo, [kGithub, path.join(kRepo, ".yamllint")]), []);
  });

  for (const name of kWorkflowFiles) {
    test(`workflows/${name} is valid against the GitHub workflow schema`, () => {
      assert.deepEqual(CheckWorkflowSchema(Text(name)), []);
    });
    test(`workflows/${name}: scripts exist and take its options, actions pinned, paths exist`, () => {
      assert.deepEqual(CheckWorkflowSemantics(Workflow(name), kRepo), []);
    });
  }

  for (const name of kForms) {
    test(`ISSUE_TEMPLATE/${name} is a valid issue form`, () => {
      assert.deepEqual(CheckIssueForm(LoadYaml(path.join(kTemplates, name))), []);
    });
  }

  test("ISSUE_TEMPLATE/config.yml is valid", () => {
    assert.deepEqual(CheckIssueConfig(LoadYaml(path.join(kTemplates, "config.yml"))), []);
  });

  test("ci runs the suite as .ci/run does, on pushes to main and pull requests", () => {
    const ci = Workflow("ci.yml");
    assert.ok(RunsCommand(ci, /(^|\s)(bash )?\.ci\/run\b|scripts\/test\.sh(?!\s+--)/m));
    assert.deepEqual(ci.on.push.branches, ["main"]);
    assert.ok("pull_request" in ci.on);
    assert.equal(ci.jobs.test.container.image, "debian:bookworm");
  });

  test("cd builds docker/Dockerfile's gateway stage on v* tags and pushes it to ghcr.io", () => {
    const cd = Workflow("cd.yml");
    assert.deepEqual(cd.on, { push: { tags: ["v*"] } });
    const build = cd.jobs.image.steps.find((s) => s.uses?.startsWith("docker/build-push-action@"));
    assert.deepEqual([build.with.file, build.with.target, build.with.push], ["docker/Dockerfile", "gateway", true]);
    const meta = cd.jobs.image.steps.find((s) => s.uses?.startsWith("docker/metadata-action@"));
    assert.equal(meta.with.images, "ghcr.io/${{ github.repository }}");
  });

  test("security-scan runs ASan, TSan, the fuzz targets and an image scan", () => {
    const scan = Workflow("security-scan.yml");
    assert.ok(RunsCommand(scan, /scripts\/test\.sh --asan/));
    assert.ok(RunsCommand(scan, /scripts\/test\.sh --tsan/));
    assert.ok(RunsCommand(scan, /scripts\/fuzz\.sh \d+/));
    assert.ok(scan.jobs["image-scan"].steps.some((s) => s.uses?.startsWith("aquasecurity/trivy-action@")));
  });

  test("dependency-check audits every tests/*/package-lock.json", () => {
    const locks = readdirSync(path.join(kRepo, "tests"), { withFileTypes: true })
      .filter((d) => d.isDirectory() && readdirSync(path.join(kRepo, "tests", d.name)).includes("package-lock.json"))
      .map((d) => d.name).sort();
    assert.deepEqual([...Workflow("dependency-check.yml").jobs["npm-audit"].strategy.matrix.suite].sort(), locks);
  });
});

describe("mistakes planted in a copy are reported", () => {
  const Planted = (name, from, to) => {
    const text = Text(name);
    assert.ok(text.includes(from), `${name} has no ${from}`);
    return text.replace(from, to);
  };

  test("yamllint: trailing spaces and a key given twice", () => {
    const file = path.join(scratch, "ci.yml");
    const text = Planted("ci.yml", "    timeout-minutes: 90\n", "    timeout-minutes: 90   \n    timeout-minutes: 60\n");
    const line = text.split("\n").indexOf("    timeout-minutes: 90   ") + 1;
    writeFileSync(file, text);
    assert.deepEqual(Yamllint(kRepo, [file]).map((l) => l.replace(file, "ci.yml")), [
      `ci.yml:${line}:24: [error] trailing spaces (trailing-spaces)`,
      `ci.yml:${line + 1}:5: [error] duplication of key "timeout-minutes" in mapping (key-duplicates)`,
    ]);
  });

  test("schema: a misspelt runs-on", () => {
    const problems = CheckWorkflowSchema(Planted("ci.yml", "runs-on:", "runs_on:"));
    assert.ok(problems.includes("/jobs/test: Property conditions are not met (Additional property 'runs_on' is not allowed)"),
      problems.join("\n"));
    assert.ok(problems.includes("/jobs/test/runs-on: This property is required"), problems.join("\n"));
  });

  test("schema: a step with neither uses nor run", () => {
    const problems = CheckWorkflowSchema(Planted("cd.yml", "      - uses: docker/setup-buildx-action@v3.7.1\n",
      "      - name: nothing to do\n"));
    assert.ok(problems.includes("/jobs/image/steps/1/uses: This property is required"), problems.join("\n"));
    assert.ok(problems.includes("/jobs/image/steps/1/run: This property is required"), problems.join("\n"));
  });

  test("schema: an unknown trigger", () => {
    const problems = CheckWorkflowSchema(Planted("dependency-check.yml", "  schedule:", "  schedules:"));
    assert.ok(problems.includes("/on: Property conditions are not met (Additional property 'schedules' is not allowed)"),
      problems.join("\n"));
  });

  test("semantics: a script that does not exist, an option a script does not take", () => {
    const wf = YAML.parse(Planted("security-scan.yml", "scripts/fuzz.sh 60", "scripts/fuzzing.sh 60")
      .replace("build: [asan, tsan]", "build: [asan, msan]"));
    assert.deepEqual(CheckWorkflowSemantics(wf, kRepo), [
      "jobs.sanitizers.steps[3]: scripts/test.sh does not accept --msan",
      "jobs.fuzz.steps[4]: runs scripts/fuzzing.sh, which does not exist",
    ]);
  });

  test("semantics: an action on a moving tag, and one on a branch", () => {
    const wf = YAML.parse(Planted("ci.yml", "actions/checkout@v4.2.2", "actions/checkout@v4")
      .replace("actions/upload-artifact@v4.4.3", "actions/upload-artifact@main"));
    assert.deepEqual(CheckWorkflowSemantics(wf, kRepo), [
      "jobs.test.steps[1]: actions/checkout@v4 is not pinned to an exact version or commit",
      "jobs.test.steps[5]: actions/upload-artifact@main is not pinned to an exact version or commit",
    ]);
  });

  test("semantics: a Dockerfile stage and a working directory that do not exist", () => {
    const cd = YAML.parse(Planted("cd.yml", "target: gateway", "target: gateway-image"));
    assert.deepEqual(CheckWorkflowSemantics(cd, kRepo),
      ["jobs.image.steps[4]: docker/Dockerfile has no stage gateway-image"]);
    const deps = YAML.parse(Planted("dependency-check.yml", "suite: [api, blackbox, deploy, tokenizers]", "suite: [api, e2e]"));
    assert.deepEqual(CheckWorkflowSemantics(deps, kRepo),
      ["jobs.npm-audit.steps[2]: working-directory tests/e2e does not exist"]);
  });

  test("ci that no longer runs the suite", () => {
    const ci = YAML.parse(Planted("ci.yml", "run: bash .ci/run", "run: scripts/build.sh release"));
    assert.equal(RunsCommand(ci, /(^|\s)(bash )?\.ci\/run\b|scripts\/test\.sh(?!\s+--)/m), false);
  });

  test("issue forms: an unknown field type, a dropdown without options, an id used twice", () => {
    const form = LoadYaml(path.join(kTemplates, "bug_report.yml"));
    form.body[1].type = "text";
    delete form.body[2].attributes.options;
    form.body[4].id = "config";
    assert.deepEqual(CheckIssueForm(form), [
      "body[1].type: text is not one of markdown, textarea, input, dropdown, checkboxes",
      "body[2]: a dropdown needs attributes.options",
      "body[4].id: config is used twice",
    ]);
    assert.deepEqual(CheckIssueForm({ ...form, body: [], label: "x" }),
      ["label: not a key of an issue form", "body: required, a non-empty list"]);
  });

  test("issue config: a non-boolean and a link without its URL", () => {
    assert.deepEqual(CheckIssueConfig({ blank_issues_enabled: "no", contact_links: [{ name: "x", about: "y" }] }),
      ["blank_issues_enabled: not a boolean", "contact_links[0].url: required"]);
  });
});
