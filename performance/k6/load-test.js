// Load test: the arrival rate ramps up to RATE requests per second, holds there for DURATION,
// and ramps down, with a mix of short, token-heavy and streamed chat completions.
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e API_KEY=sk-demo-key -e MODEL=llama2-7b \
//     -e RATE=20 -e DURATION=5m performance/k6/load-test.js
// Environment: BASE_URL, API_KEY, MODEL; RATE (requests/s at the plateau, 20), RAMP (30s),
// DURATION (5m), VUS (preallocated, 20), MAX_VUS (200), MIX_HEAVY (0.2), MIX_STREAM (0.3),
// MAX_TOKENS (64), HEAVY_MAX_TOKENS (1024), TIMEOUT (120s); thresholds P95_MS (2000),
// STREAM_P95_MS (10000), MAX_429_SHARE (0.05), MAX_ERROR_SHARE (0.01). See docs/performance.md.
import { duration, num, pickKind, send, summaryTrendStats, thresholds } from './common.js';

const rate = num('RATE', 20);
const ramp = duration('RAMP', '30s');

export const options = {
  scenarios: {
    load: {
      executor: 'ramping-arrival-rate',
      startRate: Math.max(1, Math.floor(rate / 4)),
      timeUnit: '1s',
      preAllocatedVUs: num('VUS', 20),
      maxVUs: num('MAX_VUS', 200),
      stages: [
        { duration: ramp, target: rate },
        { duration: duration('DURATION', '5m'), target: rate },
        { duration: ramp, target: 0 },
      ],
    },
  },
  // At a steady rate a key sized for it should rarely be refused.
  thresholds: thresholds({ p95Ms: 2000, streamP95Ms: 10000, max429Share: 0.05 }),
  summaryTrendStats,
};

export default function () {
  send(pickKind({ heavy: 0.2, stream: 0.3 }));
}
