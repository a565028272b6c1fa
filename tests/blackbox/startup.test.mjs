// Safe start-up: a second gateway on the ports or the data_dir of a running one fails to start,
// saying why, and the first keeps serving; port sharing is opt-in (server.reuse_port).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';

import { cleanup, completeConfig, runGateway, startGateway, tempDir, toYaml } from './lib/harness.mjs';

after(cleanup);

const MODELS = [{ name: 'm', backends: ['http://127.0.0.1:9'] }];

// Runs a second gateway on `config` (completed in a fresh temp dir) until it exits: its exit
// code, its output and its [error] lines (without their timestamps).
function runSecond(config) {
  const dir = tempDir();
  const file = path.join(dir, 'second.yaml');
  writeFileSync(file, toYaml(completeConfig(config, dir)));
  const r = runGateway(['--config', file]);
  const output = r.stdout + r.stderr;
  const errors = output.split('\n').filter((l) => l.includes('] [error] '))
      .map((l) => l.slice(l.indexOf('] [error] ') + '] [error] '.length));
  return { code: r.code, output, errors };
}

async function assertServing(gw) {
  for (let i = 0; i < 8; i++) {
    const r = await gw.fetch(`${gw.url}/v1/models`, { headers: { authorization: 'Bearer none' } });
    assert.equal(r.status, 401, 'the data plane answers (401: no such key)');
    await r.text();
    const h = await gw.fetch(`${gw.adminUrl}/healthz`);
    assert.equal(h.status, 200);
    await h.text();
  }
}

test('a second gateway on the port of a running one exits 1 naming listen', async () => {
  const first = await startGateway({ models: MODELS });
  const second = runSecond({ models: MODELS, listen: `127.0.0.1:${first.port}` });
  assert.equal(second.code, 1, second.output);
  assert.deepEqual(second.errors, [
    `listen: cannot listen on 127.0.0.1:${first.port}: Address already in use (another process ` +
    'has the port: stop it or pick another port, or set server.reuse_port: true)',
  ]);
  assert.doesNotMatch(second.output, /listening on/);
  await assertServing(first);
});

test('a second gateway on the admin port of a running one exits 1 naming admin.listen',
     async () => {
       const first = await startGateway({ models: MODELS });
       const adminPort = new URL(first.adminUrl).port;
       const second = runSecond({
         models: MODELS, admin: { listen: `127.0.0.1:${adminPort}`, token: 'bb-admin-token' },
       });
       assert.equal(second.code, 1, second.output);
       assert.deepEqual(second.errors, [
         `admin.listen: cannot listen on 127.0.0.1:${adminPort}: Address already in use ` +
         '(another process has the port: stop it or pick another port)',
       ]);
       await assertServing(first);
     });

test('a second gateway on the data_dir of a running one exits 1 naming it and the holder',
     async () => {
       const first = await startGateway({ models: MODELS });
       const dataDir = path.join(first.dir, 'data');
       const second = runSecond({ models: MODELS, store: { backend: 'memory', data_dir: dataDir } });
       assert.equal(second.code, 1, second.output);
       assert.deepEqual(second.errors, [
         `store.data_dir: ${dataDir}: in use by another process (pid ${first.proc.pid}); ` +
         'each gateway needs a data_dir of its own',
       ]);
       assert.doesNotMatch(second.output, /listening on/);
       await assertServing(first);
     });

test('server.reuse_port: true lets two gateways share the data-plane port', async () => {
  const first = await startGateway({ models: MODELS, server: { reuse_port: true } });
  const second = await startGateway(
      { models: MODELS, server: { reuse_port: true }, listen: `127.0.0.1:${first.port}` },
      { name: 'second' });
  assert.equal(second.port, first.port);
  await assertServing(first);
  await assertServing(second);
});

test('a start logs what it runs: version, config, listeners, store, models, keys', async () => {
  const gw = await startGateway({
    models: [{ name: 'm', aliases: ['mm'], backends: ['http://127.0.0.1:9'] }],
    tenants: [{ name: 't' }],
    api_keys: [{ name: 'a', key: 'sk-startup-key-0123456789', tenant: 't' }],
  });
  const adminPort = new URL(gw.adminUrl).port;
  const info = (text) => new RegExp(`^\\[[^\\]]+\\] \\[info\\] ${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  const version = runGateway(['--version']).stdout.split(' ')[1];
  await gw.proc.waitForLine(info(
      `token-rate-limiter ${version} started with config ${gw.configPath}; listening on ` +
      `127.0.0.1:${gw.port} (data plane), 127.0.0.1:${adminPort} (admin)`));
  await gw.proc.waitForLine(info(`store: memory, data_dir ${path.join(gw.dir, 'data')}`));
  await gw.proc.waitForLine(info('models: m (aliases mm) -> http://127.0.0.1:9'));
  await gw.proc.waitForLine(info('keys: 1 in the config, 0 made through the admin API; tenants: 1'));
  const output = [...gw.proc.stdout, ...gw.proc.stderr].join('\n');
  assert.doesNotMatch(output, /bb-admin-token|sk-startup-key/, 'no secret in the log');
});
