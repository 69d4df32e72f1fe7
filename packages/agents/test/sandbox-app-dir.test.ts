/**
 * A sandboxed start from an app folder the tenant's uid cannot enter (a clone made private with
 * chmod 700) fails with that reason, instead of the app dying of "file not found" at every
 * restart. Needs root and bwrap.
 */
import { randomUUID } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createProcessDriver } from '../src/runtime/process/driver'
import { probeSandbox } from '../src/sandbox'
import { makeInstance, tempDir } from './helpers'

const root = process.getuid?.() === 0
if (!root) console.log('skipping the sandbox app-folder test: not root')

describe.skipIf(!root)('sandboxed process start: the app folder', () => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  it('refuses, naming the folder, its mode and the fix, when the tenant’s uid cannot enter it', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const app = join(dir.path, 'clone')
    await mkdir(app, { mode: 0o700 })
    await writeFile(join(app, 'server.js'), 'setInterval(() => {}, 1000)')
    const probe = await probeSandbox({ group: `alveary-test-${randomUUID().slice(0, 8)}`, pidsMax: 64, hide: [], etcDir: join(dir.path, 'sandbox-etc') })
    if (!probe.ok) throw new Error(probe.reason)
    const driver = createProcessDriver({ dataDir: join(dir.path, 'data'), cwd: app, sandbox: probe.sandbox })
    const inst = makeInstance({ spec: { command: process.execPath, args: ['server.js'] } })
    const outcome = await driver.start(inst).then(
      async (h) => (await h.stop(1), 'started'),
      (e: Error) => e.message,
    )
    expect(outcome).toContain(`the app's folder ${app} (mode 700) cannot be entered by the tenant's uid 200001: let others in (chmod o+x ${app})`)
  })
})
