// scripts/backup-redis.sh (docs/usage.md, "Backup and restore"): a real redis-server holding a
// gateway's API-made key and its usage, made through that gateway, backed up (BGSAVE) and
// restored into a fresh redis-server both ways: into a running, empty Redis (keys and usage
// through copy-store; budgets start full) and, as an RDB, into a stopped one (everything, budgets
// included). A gateway started on each restored Redis authenticates the key with the same
// secret, and its usage API answers what the first one did. (usage.test.mjs proves the usage
// totals through backup.sh on either store; store_switch.test.mjs restores across stores.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';

import {
  REPO_ROOT, chatBody, cleanup, gatewayBin, keyLimits, startGateway, startMock, startRedis, tempDir,
  usageTotal, waitReady,
} from './lib/harness.mjs';

after(cleanup);

const KEY = 'backed-up';
const config = (mock, redis) => ({
  models: [{ name: 'm', backends: [mock.url] }],
  store: { backend: 'redis', redis: { url: redis.url } },
});

function backupRedis(...args) {
  const r = spawnSync('bash', [path.join(REPO_ROOT, 'scripts/backup-redis.sh'), ...args],
                      { encoding: 'utf8', timeout: 60000, env: { ...process.env, TRL_BIN: gatewayBin() } });
  assert.equal(r.status, 0, `backup-redis.sh ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

// The key's tokens budget: what the limits route says is left of it.
const tokensLeft = async (gw) => (await keyLimits(gw, KEY)).find((l) => l.tokens !== undefined).remaining;

async function chat(gw, secret) {
  const r = await gw.post('chat/completions', chatBody('m', 'back me up', { max_tokens: 3 }), { key: secret });
  assert.equal(r.status, 200, r.text);
  return r;
}

test('a Redis backup restores into a fresh Redis: the key authenticates, usage reads the same', async () => {
  const mock = await startMock({ models: ['m'] });
  const source = await startRedis({ name: 'redis-source' });
  const gw = await startGateway(config(mock, source), { name: 'gw-source' });
  await waitReady(gw);
  const made = await gw.adminFetch('/admin/v1/keys', {
    // A calendar window does not refill while the test runs: what is left reads the same later.
    method: 'POST', body: { name: KEY, limits: [{ tokens: 100000, per: '1d', reset: 'calendar' }] } });
  assert.equal(made.status, 201, made.text);
  const secret = made.json.key;
  for (let i = 0; i < 3; i++) await chat(gw, secret);
  const usage = await usageTotal(gw, { key: KEY }, { requests: 3 });
  assert.equal(usage.requests, 3);
  const left = await tokensLeft(gw);
  assert.equal(left, 100000 - usage.prompt_tokens - usage.completion_tokens);
  await gw.stop();

  const saved = path.join(tempDir(), 'backup');
  assert.match(backupRedis('backup', '--redis-url', source.url, '--out', saved),
               /^backed up .*dump\.rdb -> .*\/backup\/dump\.rdb$/m);
  await source.stop();

  // Into a running, empty Redis: keys and usage, budgets full.
  const fresh = await startRedis({ name: 'redis-fresh' });
  assert.equal(fresh.cli('DBSIZE'), '0');
  assert.match(backupRedis('restore', '--from', saved, '--redis-url', fresh.url),
               /^copied 1 API-made keys and 1 usage rows from Redis redis:\/\/127\.0\.0\.1:\d+\/0 to Redis /m);
  const onFresh = await startGateway(config(mock, fresh), { name: 'gw-fresh' });
  await waitReady(onFresh);
  assert.deepEqual(await usageTotal(onFresh, { key: KEY }), usage);
  assert.equal(await tokensLeft(onFresh), 100000);
  await chat(onFresh, secret);
  const wrong = await onFresh.post('chat/completions', chatBody('m', 'x', { max_tokens: 1 }),
                                   { key: `${secret}x` });
  assert.equal(wrong.status, 401);
  await onFresh.stop();

  // Into a stopped Redis, as its RDB: everything, the budget as it was.
  const dir = tempDir('trl-redis-restored-');
  assert.match(backupRedis('restore', '--from', saved, '--redis-rdb', path.join(dir, 'dump.rdb')),
               /^restored .*dump\.rdb -> .*dump\.rdb$/m);
  const restored = await startRedis({ name: 'redis-restored', args: ['--dir', dir, '--dbfilename', 'dump.rdb'] });
  const onRestored = await startGateway(config(mock, restored), { name: 'gw-restored' });
  await waitReady(onRestored);
  assert.deepEqual(await usageTotal(onRestored, { key: KEY }), usage);
  assert.equal(await tokensLeft(onRestored), left);
  await chat(onRestored, secret);
  await onRestored.stop();
});

test('backup-redis.sh refuses what it cannot do, saying why', () => {
  const run = (...args) => spawnSync('bash', [path.join(REPO_ROOT, 'scripts/backup-redis.sh'), ...args],
                                     { encoding: 'utf8' });
  const withRdb = tempDir();
  writeFileSync(path.join(withRdb, 'dump.rdb'), '');
  const cases = [
    [['backup', '--out', tempDir()], 'backup-redis.sh: backup needs --redis-url URL --out DEST_DIR'],
    [['restore', '--from', tempDir(), '--redis-url', 'redis://127.0.0.1:1/0'],
     /^backup-redis\.sh: no dump\.rdb in .* \(is it a backup made by backup-redis\.sh\?\)$/],
    [['restore', '--from', withRdb, '--redis-url', 'http://127.0.0.1:6379'],
     'backup-redis.sh: --redis-url must start with redis:// or rediss://'],
    [['copy'], 'backup-redis.sh: unknown command: copy'],
  ];
  for (const [args, message] of cases) {
    const r = run(...args);
    assert.equal(r.status, 1, args.join(' '));
    const last = r.stderr.trim().split('\n').at(-1);
    if (typeof message === 'string') assert.equal(last, message);
    else assert.match(last, message);
  }
});
