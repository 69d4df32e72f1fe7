import { defineConfig } from 'vitest/config'

// Integration tests start real databases, BFFs, agents and processes; their waits are conditions with
// their own deadlines. The per-test ceilings only catch a hang, so they leave room for a busy 2-core machine.
export default defineConfig({ test: { include: ['src/**/*.test.ts', 'test/**/*.test.ts'], setupFiles: ['test/setup.ts'], testTimeout: 90_000, hookTimeout: 180_000 } })
