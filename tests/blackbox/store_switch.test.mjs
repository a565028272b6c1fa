// Data an operator can lose without noticing, said loudly (issue 28): a gateway moved from the
// embedded store to Redis while its data_dir still holds API-made keys and usage, and a Redis
// that restarted without persistence under a running gateway. Both reach the log and /readyz's
// "warnings"; the gateway keeps serving. And the way to move: `token-rate-limiter copy-store`
// copies keys and usage from one store to another, and refuses a target that holds any.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, test } from 'node:test';

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

import {
  ADMIN_TOKEN, REPO_ROOT, chatBody, cleanup, completeConfig, gatewayBin, pollUntil, runGateway,
  startGateway, startMock, startRedis, tempDir, toYaml, usageTotal, waitReady,
} from './lib/harness.mjs';

after(cleanup);

const config = (mock, store) => ({
  models: [{ name: 'm', backends: [mock.url] }],
  default_limits: [{ tokens: 100000, per: '1m' }],
  store,
});

async function readyz(gw) {
  const r = await fetch(`${gw.adminUrl}/readyz`);
  return { status: r.status, body: await r.json() };
}

test('a gateway moved to Redis names the embedded data it no longer serves', async () => {
  const mock = await startMock({ models: ['m'] });
  const dataDir = path.join(tempDir(), 'data');
  const embedded = await startGateway(config(mock, { backend: 'memory', data_dir: dataDir }));
  const made = await embedded.adminFetch('/admin/v1/keys', { method: 'POST', body: { name: 'made' } });
  assert.equal(made.status, 201);
  const served = await embedded.post('chat/completions', chatBody('m', 'hi', { max_tokens: 2 }),
                                     { key: made.json.key });
  assert.equal(served.status, 200);
  await embedded.stop();

  const redis = await startRedis();
  const gw = await startGateway(config(mock, { backend: 'redis', data_dir: dataDir,
                                               redis: { url: redis.url } }));
  await waitReady(gw);
  const keysLine = `store: ${dataDir}/keys.db holds 1 keys made through the admin API on the ` +
    'embedded store; this gateway is on Redis and does not serve them (to move them: ' +
    'docs/redis.md, "Moving from the embedded store")';
  const usageLine = `store: ${dataDir}/usage.db holds 1 usage rows of the embedded store; this ` +
    'gateway is on Redis and does not serve them (to move them: docs/redis.md, "Moving from the ' +
    'embedded store")';
  assert.deepEqual(await readyz(gw), { status: 200, body: { status: 'ready', warnings: [keysLine, usageLine] } });
  await gw.proc.waitForLine(/holds 1 usage rows of the embedded store/);
  assert.ok(gw.proc.stdout.some((l) => l.includes(`[warning] ${keysLine}`)), gw.proc.stdout.join('\n'));
  const refused = await gw.post('chat/completions', chatBody('m', 'hi', { max_tokens: 2 }),
                                { key: made.json.key });
  assert.equal(refused.status, 401, 'the key stayed behind in keys.db');
});

test('a Redis that lost the keys under a running gateway is reported with what was lost', async () => {
  const mock = await startMock({ models: ['m'] });
  let redis = await startRedis();
  const gw = await startGateway(config(mock, { backend: 'redis', redis: { url: redis.url } }));
  await waitReady(gw);
  for (const name of ['a', 'b']) {
    const r = await gw.adminFetch('/admin/v1/keys', { method: 'POST', body: { name } });
    assert.equal(r.status, 201);
  }
  assert.deepEqual((await readyz(gw)).body.warnings, []);

  redis = await redis.restart();  // nothing persisted
  const lost = 'keys: the key store went back from version 2 to 0 (a Redis restarted without ' +
    'persistence, flushed, or restored from an older backup): 2 keys made through the admin ' +
    'API are gone from it; restore them from a backup or make them again';
  await pollUntil(async () => (await readyz(gw)).body.warnings.length > 0);
  assert.deepEqual(await readyz(gw), { status: 200, body: { status: 'ready', warnings: [lost] } });
  assert.ok(gw.proc.stdout.some((l) => l.includes(`[error] ${lost}`)), gw.proc.stdout.join('\n'));
  const keys = await gw.adminFetch('/admin/v1/keys', { token: ADMIN_TOKEN });
  assert.deepEqual(keys.json.data, [], 'the gateway follows the store');
});

// A config file for copy-store (and the gateway): `store` completed as the tests complete it.
function configFile(mock, store) {
  const dir = tempDir();
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, toYaml(completeConfig(config(mock, store), dir)));
  return file;
}

test('copy-store moves API-made keys and usage from the embedded store to Redis', async () => {
  const mock = await startMock({ models: ['m'] });
  const dataDir = path.join(tempDir(), 'data');
  const embeddedStore = { backend: 'memory', data_dir: dataDir };
  const embedded = await startGateway(config(mock, embeddedStore));
  const made = await embedded.adminFetch('/admin/v1/keys', {
    method: 'POST', body: { name: 'moved', limits: [{ tokens: 7777, per: '1h' }] },
  });
  assert.equal(made.status, 201);
  for (let i = 0; i < 3; i++) {
    const r = await embedded.post('chat/completions', chatBody('m', 'hi', { max_tokens: 2 }),
                                  { key: made.json.key });
    assert.equal(r.status, 200);
  }
  const before = await usageTotal(embedded, { key: 'moved' }, { requests: 3 });
  await embedded.stop();

  const redis = await startRedis();
  const redisStore = { backend: 'redis', redis: { url: redis.url } };
  const from = configFile(mock, embeddedStore);
  const to = configFile(mock, redisStore);
  const copied = runGateway(['copy-store', '--from', from, '--to', to]);
  assert.equal(copied.code, 0, copied.stderr);
  assert.equal(copied.stdout, `copied 1 API-made keys and 1 usage rows from the embedded store ` +
                              `in ${dataDir} to Redis redis://127.0.0.1:${redis.port}/0\n`);

  const gw = await startGateway(config(mock, redisStore));
  await waitReady(gw);
  const key = await gw.adminFetch('/admin/v1/keys/moved');
  assert.deepEqual(key.json.limits, [{ tokens: 7777, per: '1h' }]);
  assert.deepEqual(await usageTotal(gw, { key: 'moved' }), before);
  const served = await gw.post('chat/completions', chatBody('m', 'hi', { max_tokens: 2 }),
                               { key: made.json.key });
  assert.equal(served.status, 200, 'the same secret works on Redis');

  const running = await startGateway(config(mock, embeddedStore));
  const busy = runGateway(['copy-store', '--from', from, '--to', to]);
  assert.equal(busy.code, 1);
  assert.match(busy.stderr, /^copy-store: .*data: .*in use by another process \(pid \d+\)/);
  await running.stop();

  const again = runGateway(['copy-store', '--from', from, '--to', to]);
  assert.equal(again.code, 1);
  assert.equal(again.stderr, `copy-store: Redis redis://127.0.0.1:${redis.port}/0 already holds ` +
                             '1 API-made keys and 1 usage rows: copy into an empty store (usage ' +
                             'rows would add up)\n');
  assert.deepEqual(await usageTotal(gw, { key: 'moved' }), {
    ...before, requests: before.requests + 1,
    prompt_tokens: before.prompt_tokens + before.prompt_tokens / 3,
    completion_tokens: before.completion_tokens + before.completion_tokens / 3,
  }, 'the refused copy added nothing');
});

// scripts/backup.sh restore --config: a backup of either store restored into the other.
test('backup.sh restores an embedded backup into Redis and a Redis backup into the embedded store', async () => {
  const mock = await startMock({ models: ['m'] });
  const backup = (...args) => spawnSync('bash', [path.join(REPO_ROOT, 'scripts/backup.sh'), ...args],
                                        { encoding: 'utf8', env: { ...process.env, TRL_BIN: gatewayBin() } });
  const use = async (gw, name) => {
    const made = await gw.adminFetch('/admin/v1/keys', { method: 'POST', body: { name } });
    assert.equal(made.status, 201);
    const r = await gw.post('chat/completions', chatBody('m', 'hi', { max_tokens: 2 }), { key: made.json.key });
    assert.equal(r.status, 200);
    return { secret: made.json.key, usage: await usageTotal(gw, { key: name }, { requests: 1 }) };
  };

  // Embedded -> Redis.
  const dataDir = path.join(tempDir(), 'data');
  const embedded = await startGateway(config(mock, { backend: 'memory', data_dir: dataDir }));
  const first = await use(embedded, 'from-embedded');
  await embedded.stop();
  const embeddedBackup = path.join(tempDir(), 'backup');
  let r = backup('backup', '--data-dir', dataDir, '--out', embeddedBackup);
  assert.equal(r.status, 0, r.stderr);
  const redis = await startRedis();
  const redisStore = { backend: 'redis', redis: { url: redis.url } };
  r = backup('restore', '--from', embeddedBackup, '--config', configFile(mock, redisStore));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^copied 1 API-made keys and 1 usage rows from the embedded store in /);
  const onRedis = await startGateway(config(mock, redisStore));
  await waitReady(onRedis);
  assert.deepEqual(await usageTotal(onRedis, { key: 'from-embedded' }), first.usage);
  const second = await use(onRedis, 'from-redis');
  await onRedis.stop();

  // Redis -> embedded.
  const redisBackup = path.join(tempDir(), 'backup');
  r = backup('backup', '--redis-url', redis.url, '--out', redisBackup);
  assert.equal(r.status, 0, r.stderr);
  const newDir = path.join(tempDir(), 'data');
  const embeddedStore = { backend: 'memory', data_dir: newDir };
  r = backup('restore', '--from', redisBackup, '--config', configFile(mock, embeddedStore));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^copied 2 API-made keys and 2 usage rows from Redis redis:\/\/127\.0\.0\.1:\d+\/0 to the embedded store in /);
  const back = await startGateway(config(mock, embeddedStore));
  for (const [name, was] of [['from-embedded', first], ['from-redis', second]]) {
    assert.deepEqual(await usageTotal(back, { key: name }), was.usage, name);
    const served = await back.post('chat/completions', chatBody('m', 'hi', { max_tokens: 2 }), { key: was.secret });
    assert.equal(served.status, 200, name);
  }
});
