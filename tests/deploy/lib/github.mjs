// Checks of the GitHub files (.github/): YAML style by yamllint, each workflow against
// SchemaStore's github-workflow.json schema (compiled into @action-validator/core), the issue
// forms and their config against GitHub's documented form syntax (no npm package ships that
// schema as JSON: the checks below are written from the docs), and what a schema cannot see: the
// repo scripts a `run:` calls exist and accept the options given, every action is pinned to an
// exact version, the paths a step names exist. Each check returns one line per problem.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import YAML from "yaml";

const { validateWorkflow } = createRequire(import.meta.url)("@action-validator/core");

// yamllint with the repo's .yamllint, on files or directories: "file:line:col: [level] message".
export function Yamllint(repo, targets) {
  const r = spawnSync("yamllint", ["-f", "parsable", "-c", path.join(repo, ".yamllint"), ...targets],
    { encoding: "utf8" });
  if (r.error) throw new Error(`yamllint: ${r.error.message} (Debian: apt-get install yamllint)`);
  return r.stdout.split("\n").filter(Boolean);
}

// The schema's findings, innermost first: "path: title (detail)". A oneOf failure lists what
// each branch wanted; all are kept, so the right one is among them.
function Flatten(errors) {
  return errors.flatMap((e) => (e.states
    ? e.states.flatMap((s) => Flatten(s.errors))
    : [`${e.path ?? e.location?.line ?? ""}: ${e.title}${e.detail ? ` (${e.detail})` : ""}`]));
}

export function CheckWorkflowSchema(text) {
  return [...new Set(Flatten(validateWorkflow(text).errors))];
}

const kFieldTypes = new Set(["markdown", "textarea", "input", "dropdown", "checkboxes"]);
const kFormKeys = new Set(["name", "description", "title", "labels", "assignees", "body", "projects", "type"]);

// An issue form (docs.github.com, "Syntax for issue forms" and "for GitHub's form schema").
export function CheckIssueForm(doc) {
  const problems = [];
  for (const key of Object.keys(doc ?? {})) if (!kFormKeys.has(key)) problems.push(`${key}: not a key of an issue form`);
  for (const key of ["name", "description"]) {
    if (typeof doc?.[key] !== "string" || doc[key] === "") problems.push(`${key}: required, a non-empty string`);
  }
  if (!Array.isArray(doc?.body) || doc.body.length === 0) return [...problems, "body: required, a non-empty list"];
  const ids = new Set();
  doc.body.forEach((field, i) => {
    const at = `body[${i}]`;
    if (!kFieldTypes.has(field.type)) {
      problems.push(`${at}.type: ${field.type} is not one of ${[...kFieldTypes].join(", ")}`);
      return;
    }
    const a = field.attributes ?? {};
    if (field.type === "markdown") {
      if (typeof a.value !== "string") problems.push(`${at}: a markdown field needs attributes.value`);
      return;
    }
    if (typeof a.label !== "string" || a.label === "") problems.push(`${at}: needs attributes.label`);
    if (field.id !== undefined) {
      if (!/^[A-Za-z0-9_-]+$/.test(field.id)) problems.push(`${at}.id: ${field.id} has characters other than letters, digits, - and _`);
      if (ids.has(field.id)) problems.push(`${at}.id: ${field.id} is used twice`);
      ids.add(field.id);
    }
    if (field.type === "dropdown" && !(Array.isArray(a.options) && a.options.length > 0)) {
      problems.push(`${at}: a dropdown needs attributes.options`);
    }
    if (field.type === "checkboxes" && !(Array.isArray(a.options) && a.options.every((o) => typeof o?.label === "string"))) {
      problems.push(`${at}: checkboxes need attributes.options, each with a label`);
    }
    const required = field.validations?.required;
    if (required !== undefined && typeof required !== "boolean") problems.push(`${at}.validations.required: not a boolean`);
  });
  return problems;
}

// ISSUE_TEMPLATE/config.yml.
export function CheckIssueConfig(doc) {
  const problems = [];
  for (const key of Object.keys(doc ?? {})) {
    if (key !== "blank_issues_enabled" && key !== "contact_links") problems.push(`${key}: not a key of config.yml`);
  }
  if (doc?.blank_issues_enabled !== undefined && typeof doc.blank_issues_enabled !== "boolean") {
    problems.push("blank_issues_enabled: not a boolean");
  }
  (doc?.contact_links ?? []).forEach((link, i) => {
    for (const key of ["name", "url", "about"]) {
      if (typeof link?.[key] !== "string" || link[key] === "") problems.push(`contact_links[${i}].${key}: required`);
    }
    if (typeof link?.url === "string" && !/^https:\/\//.test(link.url)) problems.push(`contact_links[${i}].url: not an https URL`);
  });
  return problems;
}

// A pinned action: a full commit SHA, or an exact version tag (v1.2.3 or 0.28.0), never a branch
// or a moving major tag (v4): what runs is what was reviewed.
const kPinned = /^[0-9a-f]{40}$|^v?\d+\.\d+\.\d+$/;

// Every (job, step) of a workflow, with its run: text once per combination of the job's matrix
// values (`${{ matrix.x }}` replaced), so that each command checked is one that runs.
function Steps(workflow) {
  const out = [];
  for (const [jobName, job] of Object.entries(workflow.jobs ?? {})) {
    const matrix = job.strategy?.matrix ?? {};
    let combos = [{}];
    for (const [k, values] of Object.entries(matrix)) {
      if (!Array.isArray(values)) continue;
      combos = combos.flatMap((c) => values.map((v) => ({ ...c, [k]: v })));
    }
    (job.steps ?? []).forEach((step, i) => {
      const where = `jobs.${jobName}.steps[${i}]`;
      for (const combo of combos) {
        const expand = (s) => (typeof s === "string"
          ? s.replace(/\$\{\{\s*matrix\.([\w-]+)\s*\}\}/g, (m, k) => (k in combo ? String(combo[k]) : m))
          : s);
        out.push({ where, step, job, run: expand(step.run), dir: expand(step["working-directory"]) });
      }
    });
  }
  return out;
}

// The options a repo script accepts: the `--x)` and `--x | --y)` arms of its case statements.
function ScriptOptions(file) {
  const text = readFileSync(file, "utf8");
  const options = new Set();
  for (const m of text.matchAll(/^\s*((?:-[-\w]+\s*\|\s*)*-[-\w]+)\)/gm)) {
    for (const o of m[1].split("|")) options.add(o.trim());
  }
  return options;
}

const kScript = /(?:^|[\s;&|(])(?:bash\s+)?((?:\.\/)?(?:scripts|\.ci|performance)\/[\w./-]+)((?:[ \t]+[^\s;&|]+)*)/gm;

// What the schema cannot see. `repo` is where paths are looked up.
export function CheckWorkflowSemantics(workflow, repo) {
  const problems = [];
  for (const { where, step, run, dir } of Steps(workflow)) {
    if (typeof step.uses === "string" && !step.uses.startsWith("./") && !step.uses.startsWith("docker://")) {
      const [action, ref] = step.uses.split("@");
      if (!ref || !kPinned.test(ref)) problems.push(`${where}: ${step.uses} is not pinned to an exact version or commit`);
      if (!/^[\w.-]+\/[\w.-]+(\/[\w./-]+)?$/.test(action)) problems.push(`${where}: ${step.uses} is not owner/repo@ref`);
    }
    if (dir !== undefined && !existsSync(path.join(repo, dir))) problems.push(`${where}: working-directory ${dir} does not exist`);
    const built = step.with?.file;
    if (typeof built === "string" && /Dockerfile/.test(built)) {
      if (!existsSync(path.join(repo, built))) {
        problems.push(`${where}: ${built} does not exist`);
      } else if (step.with.target && !new RegExp(`^FROM\\s+\\S+\\s+AS\\s+${step.with.target}\\s*$`, "mi")
        .test(readFileSync(path.join(repo, built), "utf8"))) {
        problems.push(`${where}: ${built} has no stage ${step.with.target}`);
      }
    }
    if (typeof run !== "string") continue;
    for (const m of run.matchAll(kScript)) {
      const script = m[1].replace(/^\.\//, "");
      const file = path.join(repo, script);
      if (!existsSync(file)) {
        problems.push(`${where}: runs ${script}, which does not exist`);
        continue;
      }
      const accepted = ScriptOptions(file);
      for (const arg of m[2].trim().split(/\s+/).filter((a) => /^--?[a-z]/i.test(a))) {
        if (!accepted.has(arg)) problems.push(`${where}: ${script} does not accept ${arg}`);
      }
    }
  }
  return problems;
}

// Whether some step of the workflow runs the command `pattern` matches.
export function RunsCommand(workflow, pattern) {
  return Steps(workflow).some(({ run }) => typeof run === "string" && pattern.test(run));
}

export const LoadYaml = (file) => YAML.parse(readFileSync(file, "utf8"));
