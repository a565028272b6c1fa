// The compose files (docker/docker-compose.yml, docker-compose.dev.yml), checked offline: each
// against the Compose Specification's schema, and the stack's parts against each other and the
// gateway's config (accepted by `token-rate-limiter --check-config` from TRL_BIN_DIR), for both
// profiles. Each check is also shown to report a mistake planted in a copy.
// scripts/test-container.sh brings the stack up.
//   cd tests/deploy && npm ci && TRL_BIN_DIR=../../build/release/src/app node --test compose.test.mjs
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import {
  CheckConfigEnv, CheckGatewayService, CheckMounts, CheckSchema, CheckScrapeTargets, CheckUpstreams,
  GatewayConfig, Interpolate, LoadCompose,
} from "./lib/compose.mjs";

const kRepo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const kStack = path.join(kRepo, "docker/docker-compose.yml");
const kDev = path.join(kRepo, "docker/docker-compose.dev.yml");
const kSecrets = { ADMIN_TOKEN: "a".repeat(40), REDIS_PASSWORD: "b".repeat(40) };
const kProfiles = ["mock", "gpu"];

const Stack = (profile) => LoadCompose(kStack, { ...kSecrets, COMPOSE_PROFILES: profile });
const Config = (compose) => {
  const { text, env } = GatewayConfig(compose);
  return YAML.parse(Interpolate(text, env));
};

function CheckConfig(file, env) {
  const bin = process.env.TRL_BIN_DIR;
  assert.ok(bin, "set TRL_BIN_DIR to the folder of token-rate-limiter (e.g. build/release/src/app)");
  return spawnSync(path.join(bin, "token-rate-limiter"), ["--check-config", file],
    { env: { PATH: process.env.PATH, ...env }, encoding: "utf8" });
}

describe("docker/docker-compose.yml", () => {
  test("is valid against the Compose Specification's schema", () => {
    assert.deepEqual(CheckSchema(Stack("mock")), []);
    assert.deepEqual(CheckSchema(LoadCompose(kDev, {})), []);
  });

  test("stops without the secrets, as docker compose does", () => {
    assert.throws(() => LoadCompose(kStack, { REDIS_PASSWORD: "x" }), /ADMIN_TOKEN: set ADMIN_TOKEN/);
    assert.throws(() => LoadCompose(kStack, { ADMIN_TOKEN: "x" }), /REDIS_PASSWORD: set REDIS_PASSWORD/);
  });

  test("mock is the default profile (docker/.env)", () => {
    const compose = LoadCompose(kStack, kSecrets);
    assert.equal(compose.doc.services.gateway.environment.MODEL_SERVERS, "mock");
  });

  for (const profile of kProfiles) {
    test(`profile ${profile}: the gateway's config is accepted and reaches the profile's servers`, () => {
      const compose = Stack(profile);
      const { file, env } = GatewayConfig(compose);
      const checked = CheckConfig(file, env);
      assert.equal(checked.status, 0, checked.stdout + checked.stderr);
      assert.deepEqual(CheckConfigEnv(compose), []);
      assert.deepEqual(CheckUpstreams(compose, profile, Config(compose)), []);
      assert.deepEqual(CheckScrapeTargets(compose, profile), []);
      assert.deepEqual(CheckGatewayService(compose, Config(compose)), []);
      assert.deepEqual(CheckMounts(compose), []);
    });
  }

  test("the image's own config is accepted with only ADMIN_TOKEN set", () => {
    const checked = CheckConfig(path.join(kRepo, "docker/config.yaml"), { ADMIN_TOKEN: kSecrets.ADMIN_TOKEN });
    assert.equal(checked.status, 0, checked.stdout + checked.stderr);
  });

  test("the dev stack's mounts exist", () => {
    assert.deepEqual(CheckMounts(LoadCompose(kDev, {})), []);
  });
});

describe("mistakes planted in a copy are reported", () => {
  const Planted = (change) => {
    const compose = Stack("mock");
    change(compose);
    return compose;
  };

  test("a field the schema does not know", () => {
    const compose = Planted((c) => { c.raw.services.gateway.restart_policy = "always"; });
    assert.match(CheckSchema(compose).join("\n"), /must NOT have additional properties/);
  });

  test("a config variable the service does not set", () => {
    const compose = Planted((c) => { delete c.doc.services.gateway.environment.REDIS_PASSWORD; });
    assert.deepEqual(CheckConfigEnv(compose),
      ["the gateway's config needs ${REDIS_PASSWORD}, which its service's environment does not set"]);
  });

  test("a model server missing from a profile", () => {
    const compose = Planted((c) => { delete c.doc.services["mock-llama2-13b"]; });
    assert.deepEqual(CheckUpstreams(compose, "mock", Config(compose)),
      ["models llama2-13b (mock-llama2-13b:8000), profile mock: no service mock-llama2-13b runs with profile mock"]);
  });

  test("Redis on another port than the config's", () => {
    const compose = Planted((c) => { c.doc.services.redis.expose = ["6380"]; });
    assert.deepEqual(CheckUpstreams(compose, "mock", Config(compose)),
      ["store.redis.url (redis:6379), profile mock: service redis exposes 6380, not 6379"]);
  });

  test("a scrape target that is not a service", () => {
    const compose = Planted((c) => { c.doc.services.alertmanager.profiles = ["monitoring"]; });
    assert.deepEqual(CheckScrapeTargets(compose, "mock"),
      ["targets-mock.yml alertmanager:9093 (alertmanager): no service alertmanager runs with profile mock"]);
  });

  test("an admin port not published, and too short a stop grace", () => {
    const compose = Planted((c) => {
      c.doc.services.gateway.ports = ["8080:8080"];
      c.doc.services.gateway.stop_grace_period = "30s";
    });
    assert.deepEqual(CheckGatewayService(compose, Config(compose)), [
      "the gateway listens on 9090, which its service does not publish",
      "stop_grace_period 30s is not more than server.shutdown_grace (30s)",
    ]);
  });

  test("a bind mount of a file that does not exist", () => {
    const compose = Planted((c) => { c.doc.services.grafana.volumes.push("../monitoring/grafana/missing:/x:ro"); });
    assert.deepEqual(CheckMounts(compose), ["grafana mounts ../monitoring/grafana/missing, which does not exist"]);
  });
});
