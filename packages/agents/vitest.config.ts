import { defineConfig } from 'vitest/config'

// Many tests run real agents, processes, namespaces and HAProxy; their waits are conditions with their own
// deadlines. The per-test ceilings only catch a hang, so they leave room for a busy 2-core machine.
export default defineConfig({ test: { include: ['src/**/*.test.ts', 'test/**/*.test.ts'], setupFiles: ['test/setup.ts'], testTimeout: 90_000, hookTimeout: 180_000 } })
