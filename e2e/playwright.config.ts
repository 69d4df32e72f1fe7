import { existsSync } from 'node:fs'
import { defineConfig, devices } from '@playwright/test'
import { BFF_PORT, DATA_DIR, HOST_PORTS, LIFECYCLE, OPERATOR, PG_PORT, WEB_PORT } from './env'

/**
 * End-to-end tests against the whole system as `npm start` runs it (embedded PostgreSQL,
 * BFF, the built console, one local agent), on ports of their own and with fresh data.
 * The console must be built first: `npm run test:e2e` at the repo root does that.
 */
const systemChromium = '/usr/bin/chromium'
const chromium = existsSync(systemChromium)
  ? {
      launchOptions: {
        executablePath: systemChromium,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
          '--disable-quic',
        ],
      },
    }
  : {}

// The local agent offers the docker driver when it finds an engine: DOCKER_HOST, else the
// private Podman service of scripts/podman/start.sh when it runs.
const podmanSocket = `${process.env['ALVEARY_PODMAN_DIR'] ?? '/tmp/alveary-podman'}/podman.sock`
const dockerHost = process.env['DOCKER_HOST'] || (existsSync(podmanSocket) ? `unix://${podmanSocket}` : undefined)

export default defineConfig({
  testDir: './tests',
  globalSetup: './global-setup.ts',
  workers: 1,
  fullyParallel: false,
  retries: 0,
  // Scenarios drive real agents and processes; on a busy 2-core machine one takes up to ~1 min.
  timeout: 150_000,
  expect: { timeout: 20_000 },
  forbidOnly: !!process.env['CI'],
  reporter: process.env['CI'] ? [['list'], ['html', { open: 'never' }]] : [['list']],
  use: {
    baseURL: `http://127.0.0.1:${WEB_PORT}`,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    viewport: { width: 1440, height: 900 },
  },
  projects: [{ name: 'chromium', use: { ...devices['Desktop Chrome'], viewport: { width: 1440, height: 900 }, ...chromium } }],
  webServer: {
    // Fresh data every run: the data dir (database, agent state) is removed right before start.
    command: `node -e "require('fs').rmSync(process.env.ALVEARY_DATA_DIR, { recursive: true, force: true })" && node --import tsx ../apps/bff/src/start-all.ts`,
    // The BFF first; global-setup.ts then waits for the console and the local node.
    url: `http://127.0.0.1:${BFF_PORT}/healthz`,
    timeout: 180_000,
    reuseExistingServer: false,
    stdout: 'pipe',
    stderr: 'pipe',
    // Longer than start-all waits for its agent's bounded exit (--exit-grace plus removing networks and HAProxy).
    gracefulShutdown: { signal: 'SIGTERM', timeout: 75_000 },
    env: {
      WEB_PORT: String(WEB_PORT),
      BFF_PORT: String(BFF_PORT),
      ALVEARY_EMBEDDED_PG_PORT: String(PG_PORT),
      ALVEARY_DATA_DIR: DATA_DIR,
      // The suite's agents share this machine's network namespace (with other checkouts' suites too).
      ALVEARY_NETWORK: 'host',
      ALVEARY_OPERATOR_PASSWORD: OPERATOR.password,
      ALVEARY_STOPPED_RETENTION_MS: '120000',
      ALVEARY_HOST_PORT_MIN: String(HOST_PORTS.min),
      ALVEARY_HOST_PORT_MAX: String(HOST_PORTS.max),
      ALVEARY_HEARTBEAT_MS: String(LIFECYCLE.heartbeatMs),
      ALVEARY_PASSWORD_HASH_COST: '14',
      ALVEARY_NODE_LEASE_MS: String(LIFECYCLE.nodeLeaseMs),
      ALVEARY_EVICTION_GRACE_MS: String(LIFECYCLE.evictionGraceMs),
      NEXT_TELEMETRY_DISABLED: '1',
      ...(dockerHost && { DOCKER_HOST: dockerHost }),
    },
  },
})
