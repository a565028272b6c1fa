// Backend health in the log: a backend taken out of rotation, by a request that failed or by its
// health check, is logged as down with the reason, and as back up when it answers again.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';

import { chatBody, cleanup, freePort, startGateway, startMock } from './lib/harness.mjs';

after(cleanup);

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// A gateway log line (after its timestamp) exactly `text` at `level`.
const logLine = (level, text) => new RegExp(`^\\[[^\\]]+\\] \\[${level}\\] ${escape(text)}$`);

test('a backend a request took out is logged as down with the reason, then back up', async () => {
  const mock = await startMock({ name: 'mock-health', models: ['m'] });
  const gw = await startGateway({
    models: [{ name: 'm', backends: [mock.url] }],
    api_keys: [{ name: 'k', key: 'sk-health-key-0123456789' }],
  });
  const r = await gw.post('chat/completions', chatBody('m'),
                          { key: 'sk-health-key-0123456789', headers: { 'x-mock-fault': 'reset' } });
  assert.equal(r.status, 502, r.text);
  await gw.proc.waitForLine(logLine('warning', `backend ${mock.url} is down: closed the ` +
                                               'connection without answering; taken out of rotation'));
  await gw.proc.waitForLine(logLine('info', `backend ${mock.url} is back up`));
});

// A backend that accepts connections and never answers (a hung model server).
async function silentServer() {
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return `http://127.0.0.1:${server.address().port}`;
}

test('a health check that gets no answer is logged as a timeout', async () => {
  const hung = await silentServer();
  const key = 'sk-health-key-0123456789';
  const gw = await startGateway({ models: [{ name: 'm', backends: [hung] }],
                                  api_keys: [{ name: 'k', key }] });
  await gw.proc.waitForLine(logLine('warning', `backend ${hung} is down: its health check ` +
      'failed (no answer within 1s); taken out of rotation'));
  // Out of rotation: refused at once, not sent to hang.
  const r = await gw.post('chat/completions', chatBody('m'), { key });
  assert.equal(r.status, 503, r.text);
  assert.equal(r.json.error.code, 'model_unavailable');
});

test('a failed health check is logged with its reason: an HTTP status, a refused connection',
     async () => {
       const mock = await startMock({ name: 'mock-v1', models: ['m'] });
       const refused = `http://127.0.0.1:${await freePort()}`;
       const gw = await startGateway({
         models: [{ name: 'm', backends: [`${mock.url}/v1`] }, { name: 'n', backends: [refused] }],
       });
       await gw.proc.waitForLine(logLine('warning', `backend ${mock.url}/v1 is down: its health ` +
           'check failed (GET /v1/health answered HTTP 404); taken out of rotation'));
       await gw.proc.waitForLine(logLine('warning', `backend ${refused} is down: its health check ` +
           'failed (connect: Connection refused); taken out of rotation'));
     });
