// Limits per end user (issue 33): `scope: user` makes a key's or tenant's limit a budget per end
// user, named by the request's OpenAI `user` field or by identity.user_header. One user refused,
// another under the same key admitted; a request naming no user is the anonymous user (leaving
// `user` out escapes nothing). On the embedded store and on Redis shared by two instances.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import {
  chatBody, chatEstimate, cleanup, errorOf, keyLimits, startFleet, startMock,
} from './lib/harness.mjs';

after(cleanup);

const WINDOW = { per: '30d', reset: 'calendar' };
const body = (user) => chatBody('m', 'hello there world', { max_tokens: 16, ...(user === undefined ? {} : { user }) });
const reserved = chatEstimate(body()) + 16;
// One reservation fits, two do not (a request costs more than half its reservation: checked).
const PER_USER = Math.floor(reserved * 1.5);

const config = (mock, identity) => ({
  models: [{ name: 'm', backends: [mock.url] }],
  ...(identity ? { identity } : {}),
  tenants: [{ name: 't', limits: [{ requests: 1000, per: '1m', scope: 'user' }] }],
  api_keys: [{ name: 'u', key: 'sk-users-0123456789abcdef', tenant: 't',
               limits: [{ tokens: PER_USER, ...WINDOW, scope: 'user' }, { tokens: 100000, ...WINDOW }] }],
});
const KEY = 'sk-users-0123456789abcdef';

for (const [store, instances] of [['memory', 1], ['redis', 2]]) {
  describe(`users, ${store}, ${instances} instance(s)`, () => {
    test('a user-scoped limit refuses one user and not another under one key', async () => {
      const mock = await startMock({ models: ['m'] });
      const fleet = await startFleet(store, config(mock), { name: `gw-users-${store}`, instances });
      let sent = 0;
      const ask = (user) => fleet.at(sent++).post('chat/completions', body(user), { key: KEY });
      const first = await ask('alice');
      assert.equal(first.status, 200, first.text);
      assert.ok(first.json.usage.total_tokens > reserved / 2, 'one request uses over half a budget');
      assert.equal(first.headers.get('x-ratelimit-limit-tokens'), String(PER_USER));
      assert.ok(await fleet.settled({ key: 'u', requests: 1, status: 200 }));
      const refused = await ask('alice');
      assert.equal(refused.status, 429);
      const e = errorOf(refused.json, { type: 'tokens', code: 'rate_limit_exceeded' });
      assert.match(e.message, new RegExp(`^Rate limit reached for key 'u' user 'alice' ${PER_USER} tokens per 30d \\(calendar\\): remaining ${PER_USER - first.json.usage.total_tokens}, requested ${reserved}\\.`));
      assert.equal((await ask('bob')).status, 200, 'another user of the same key');
      // No user, or a null one: the anonymous user, a budget like any other.
      assert.equal((await ask(undefined)).status, 200);
      assert.ok(await fleet.settled({ key: 'u', requests: 3, status: 200 }));
      assert.equal((await ask(null)).status, 429);
      assert.equal((await ask('alice')).status, 429);
      // The key's own budget counts every user.
      const spent = 100000 - Number((await ask('carol')).headers.get('x-ratelimit-remaining-tokens'));
      assert.ok(spent > 3 * reserved / 2);
      await fleet.stop();
      await mock.stop();
    });
  });
}

describe('users, memory', () => {
  test('identity.user_header names the user instead of the body', async () => {
    const mock = await startMock({ models: ['m'] });
    const fleet = await startFleet('memory', config(mock, { user_header: 'X-End-User' }), { name: 'gw-users-header' });
    const gw = fleet.at(0);
    const ask = (header, user) => gw.post('chat/completions', body(user),
                                          { key: KEY, headers: header === undefined ? {} : { 'x-end-user': header } });
    assert.equal((await ask('dave', 'ignored')).status, 200);
    assert.ok(await fleet.settled({ key: 'u', requests: 1, status: 200 }));
    assert.equal((await ask('dave', 'someone-else')).status, 429, 'the header, not the body, names the user');
    assert.equal((await ask('erin', 'dave')).status, 200);
    const long = await ask('x'.repeat(257));
    assert.equal(long.status, 400);
    errorOf(long.json, { type: 'invalid_request_error', code: 'invalid_request', param: 'x-end-user' });
    // The admin API shows the per-user limit as written, with the anonymous user's budget.
    const [perUser] = await keyLimits(gw, 'u');
    assert.deepEqual([perUser.tokens, perUser.scope, perUser.level], [PER_USER, 'user', PER_USER]);
    await fleet.stop();
    await mock.stop();
  });

  test('a user that is no short printable string is refused and charges nothing', async () => {
    const mock = await startMock({ models: ['m'] });
    const fleet = await startFleet('memory', config(mock), { name: 'gw-users-bad' });
    const gw = fleet.at(0);
    for (const user of [5, ['a'], { id: 'a' }, 'a\nb', 'x'.repeat(257)]) {
      const r = await gw.post('chat/completions', body(user), { key: KEY });
      assert.equal(r.status, 400, JSON.stringify(user));
      errorOf(r.json, { type: 'invalid_request_error', code: 'invalid_request', param: 'user' });
    }
    assert.equal(await gw.metric('trl_requests_total', { key: 'u', status: '200' }), 0);
    assert.equal((await gw.post('chat/completions', body('x'.repeat(256)), { key: KEY })).status, 200);
    await fleet.stop();
    await mock.stop();
  });
});
