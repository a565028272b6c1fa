// The systems the benchmarks start: mock-llm backends, nginx, the gateway, redis-server,
// Portkey. Every process listens on 127.0.0.1 only and lives under the run's temp dir.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Proc, existsSync, freePort, log, run } from './common.mjs';

export function makeSystems({ tmp, buildDir, threads, mockThreads }) {
  const gatewayBin = path.join(buildDir, 'src/app/token-rate-limiter');
  const mockBin = path.join(buildDir, 'src/mock/mock-llm');

  async function waitListening(port, proc, timeoutMs = 10000) {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (proc.exitInfo) throw new Error(`${proc.name} exited: ${proc.output.slice(-10).join('\n')}`);
      const r = await run('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`], { timeoutMs: 2000 });
      if (r.code === 0) return;
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error(`${proc.name}: nothing listening on ${port} after ${timeoutMs} ms`);
  }

  // mock-llm serving models m and m-paced; `extra` sets its pace and answer length.
  async function startMock(name, extra) {
    const p = new Proc(name, mockBin, ['--listen', '127.0.0.1:0', '--models', 'm,m-paced', '--ttft',
                                       '0ms', '--threads', String(mockThreads), ...extra]);
    const m = await p.waitForLine(/mock-llm listening on (\S+):(\d+)\s*$/);
    p.port = Number(m[2]);
    return p;
  }

  // nginx as a plain proxy_pass with upstream keep-alive, one listening port per backend, as
  // many workers as the gateway has threads. Returns { proc, ports: [...] }.
  async function startNginx(backends, { workerConnections = 16384 } = {}) {
    const dir = path.join(tmp, 'nginx');
    mkdirSync(path.join(dir, 'logs'), { recursive: true });
    const ports = [];
    for (let i = 0; i < backends.length; i++) ports.push(await freePort());
    // As the current user (root runs the workers as root too, not as nobody), its own prefix,
    // pid and logs; proxy_buffering off so streams are relayed as they come, as the gateway does.
    const user = process.getuid() === 0 ? 'user root root;\n' : '';
    const blocks = backends.map((b, i) => `
  upstream backend_${i} { server 127.0.0.1:${b.port}; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${ports[i]} reuseport backlog=4096;
    location / {
      proxy_pass http://backend_${i};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }`).join('\n');
    const conf = `${user}worker_processes ${threads};
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections ${workerConnections}; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 600s;
${blocks}
}
`;
    writeFileSync(path.join(dir, 'nginx.conf'), conf);
    const p = new Proc('nginx', 'nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')]);
    for (const port of ports) await waitListening(port, p);
    return { proc: p, ports };
  }

  // The gateway config of the benchmarks: `models` maps a model name to its mock, one key with
  // three limits high enough never to refuse (the same three as performance/micro's limiter
  // benchmark: tokens per minute, requests per minute, tokens per calendar day). A billion per
  // minute is far above what a run spends (~1e8 tokens at 60k req/s), yet a plausible size:
  // absurd capacities (1e15) send the Redis scripts' refill arithmetic down its slow path
  // (capacity x elapsed µs above 2^53), which no real key would take.
  // The access log is on, as it is by default, written to /dev/null: its whole cost (the line,
  // the queue, the writer thread's write) without filling a disk; `accessLog` null leaves the
  // field out, for a baseline build older than the access log.
  function gatewayConfig(models, store, key, maxOutput, server = {}, accessLog = '/dev/null') {
    const limits = [
      { tokens: 1e9, per: '1m' },
      { requests: 1e9, per: '1m' },
      { tokens: 1e12, per: '1d', reset: 'calendar' },
    ];
    return {
      listen: '127.0.0.1:0',
      server: { threads, idle_timeout: '600s', ...server },
      store,
      models: Object.entries(models).map(([name, mock]) => ({
        name, backends: [`http://127.0.0.1:${mock.port}`], max_output_tokens: maxOutput })),
      api_keys: [{ name: 'bench', key, limits }],
      ...(accessLog === null ? {} : { access_log: { output: accessLog } }),
    };
  }

  async function startGateway(name, config, bin = gatewayBin) {
    const dir = path.join(tmp, name);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'config.yaml');
    writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
    const check = await run(bin, ['--check-config', file], { timeoutMs: 10000 });
    if (check.code !== 0) throw new Error(`--check-config: ${check.stdout}${check.stderr}`.trim());
    const p = new Proc(name, bin, ['--config', file], { cwd: dir });
    const m = await p.waitForLine(/data plane listening on (\S+):(\d+)\s*$/, 15000);
    p.port = Number(m[2]);
    return p;
  }

  async function startRedis() {
    const port = await freePort();
    const p = new Proc('redis-server', 'redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', tmp, '--daemonize', 'no', '--protected-mode', 'no']);
    await p.waitForLine(/Ready to accept connections/, 10000);
    p.port = port;
    return p;
  }

  async function startPortkey() {
    const dir = path.join(os.tmpdir(), 'trl-perf-portkey');  // kept between runs: npm i is slow
    mkdirSync(dir, { recursive: true });
    const entry = path.join(dir, 'node_modules/@portkey-ai/gateway/build/start-server.js');
    if (!existsSync(entry)) {
      log('installing @portkey-ai/gateway from npm (once, in', dir, ')');
      const r = await run('npm', ['i', '--no-audit', '--no-fund', '--prefix', dir,
                                  '@portkey-ai/gateway'], { timeoutMs: 300000 });
      if (r.code !== 0 || !existsSync(entry)) throw new Error(`npm i failed: ${r.stderr.slice(-400)}`);
    }
    const port = await freePort();
    const p = new Proc('portkey', 'node', [entry, `--port=${port}`, '--headless'],
                       { env: { NODE_ENV: 'production' } });
    await waitListening(port, p, 20000);
    p.port = port;
    return p;
  }

  return { gatewayBin, mockBin, waitListening, startMock, startNginx, gatewayConfig, startGateway,
           startRedis, startPortkey };
}
