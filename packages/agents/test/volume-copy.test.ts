import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TCommandResultFrame } from '@alveary/core/protocol'
import { createCommandRunner } from '../src/volumes/commands'
import { openReceive, sendArgs, sendVolume } from '../src/volumes/copy'
import { dataDir, volumeRoot } from '../src/volumes/store'
import { toolHere } from './helpers'

// The copy of local volumes between agents: a real rsync daemon and client on loopback.
const rsync = toolHere('rsync', 'skipping the volume copy tests') ? null : 'no rsync'

describe('volume copy: the rsync client', () => {
  it('sends whole changed files with TCP_NODELAY (no Nagle stall per protocol exchange) to the one-time module', () => {
    const args = sendArgs({ source: '/v/data', host: '198.18.0.2', port: 4000, volumeId: 'abc' })
    expect(args).toEqual(expect.arrayContaining(['--sockopts=TCP_NODELAY', '--whole-file', '--modify-window=-1', '--delete']))
    expect(args.slice(-2)).toEqual(['/v/data/', 'rsync://alveary@198.18.0.2:4000/v-abc/'])
  })
})

describe.skipIf(rsync)('volume copy', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-copy-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('the final copy brings a file rewritten within the same second at the same size (no stale delta)', async () => {
    const source = path.join(dir, 'source')
    const target = path.join(dir, 'target')
    await mkdir(source)
    await mkdir(target)
    const volumeId = '00000000-0000-4000-8000-000000000001'
    const session = await openReceive({ address: '127.0.0.1', volumes: [{ volumeId, dataDir: target }], secret: 'one-time-secret', workDir: path.join(dir, 'work'), log: pino({ level: 'silent' }) })
    try {
      const send = () => sendVolume({ source, volumeId, to: { address: '127.0.0.1', port: session.port }, secret: 'one-time-secret', onProgress: () => {} })
      const file = path.join(source, 'count')
      await writeFile(file, '1234')
      const second = Math.floor(Date.now() / 1000)
      await utimes(file, second + 0.1, second + 0.1)
      await send()
      expect(await readFile(path.join(target, 'count'), 'utf8')).toBe('1234')
      // Same size, same whole second, a later nanosecond: what a counter writing every 20 ms does.
      await writeFile(file, '5678')
      await utimes(file, second + 0.6, second + 0.6)
      expect(Math.floor((await stat(file)).mtimeMs / 1000)).toBe(Math.floor((await stat(path.join(target, 'count'))).mtimeMs / 1000))
      const { bytes } = await send()
      expect(bytes).toBeGreaterThan(0)
      expect(await readFile(path.join(target, 'count'), 'utf8')).toBe('5678')
    } finally {
      await session.close()
    }
  })

  it('a copy session into a volume ends before an instance mounts the volume: no copy writes under a running instance', async () => {
    const dirs = { local: path.join(dir, 'node-volumes'), shared: null }
    const volume = { volumeId: '00000000-0000-4000-8000-000000000002', tenantId: '00000000-0000-4000-8000-0000000000aa', driver: 'local' as const }
    const answers = new Map<string, TCommandResultFrame>()
    const runner = createCommandRunner({ dirs, address: '127.0.0.1', workDir: path.join(dir, 'runner'), drivers: {}, mounted: () => new Set(), send: (f) => void (f.type === 'command-result' && answers.set(f.id, f)), stageNetwork: async () => true, whenStopped: async () => true, log: pino({ level: 'silent' }) })
    const secret = 'a-one-time-secret-of-at-least-32-chars'
    runner.handle({ type: 'command', id: 'r1', command: { kind: 'receive-volumes', volumes: [volume], secret } })
    const port = await (async () => {
      while (!answers.has('r1')) await new Promise((r) => setImmediate(r))
      const a = answers.get('r1')!
      if (!a.ok) throw new Error(a.error)
      return a.result!.port!
    })()
    const source = path.join(dir, 'source-2')
    await mkdir(source)
    await writeFile(path.join(source, 'count'), '1')
    const send = () => sendVolume({ source, volumeId: volume.volumeId, to: { address: '127.0.0.1', port }, secret, onProgress: () => {} })
    await send()
    expect(await readFile(path.join(dataDir(volumeRoot(dirs, volume)), 'count'), 'utf8')).toBe('1')
    // What an instance's start does first (volumes/instance-volumes.ts).
    await runner.closeSessionsOf([volume.volumeId])
    await writeFile(path.join(source, 'count'), '2')
    await expect(send()).rejects.toThrow()
    expect(await readFile(path.join(dataDir(volumeRoot(dirs, volume)), 'count'), 'utf8')).toBe('1')
    await runner.close()
  })

  it('a send held for a stop copies the data as the instance left it, once it is stopped here, and fails if it never stops', async () => {
    const dirs = { local: path.join(dir, 'held-volumes'), shared: null }
    const volume = { volumeId: '00000000-0000-4000-8000-000000000003', tenantId: '00000000-0000-4000-8000-0000000000aa', driver: 'local' as const }
    const instanceId = '00000000-0000-4000-8000-0000000000ee'
    const answers = new Map<string, TCommandResultFrame>()
    const stops: { id: string; resolve: (ok: boolean) => void }[] = []
    const runner = createCommandRunner({
      dirs,
      address: '127.0.0.1',
      workDir: path.join(dir, 'held-runner'),
      drivers: {},
      mounted: () => new Set(),
      send: (f) => void (f.type === 'command-result' && answers.set(f.id, f)),
      stageNetwork: async () => true,
      whenStopped: (id) => new Promise((resolve) => stops.push({ id, resolve })),
      log: pino({ level: 'silent' }),
    })
    const until = async (what: () => boolean) => {
      while (!what()) await new Promise((r) => setTimeout(r, 5))
    }
    const secret = 'a-one-time-secret-of-at-least-32-chars'
    // Receiver and sender on one runner: loopback stands in for two nodes.
    runner.handle({ type: 'command', id: 'rcv', command: { kind: 'receive-volumes', volumes: [volume], secret } })
    await until(() => answers.has('rcv'))
    const port = answers.get('rcv')!.result!.port!
    const sourceData = path.join(dir, 'held-source')
    await mkdir(sourceData)
    const sending = createCommandRunner({ dirs: { local: sourceData, shared: null }, address: '127.0.0.1', workDir: path.join(dir, 'held-sender'), drivers: {}, mounted: () => new Set(), send: (f) => void (f.type === 'command-result' && answers.set(f.id, f)), stageNetwork: async () => true, whenStopped: (id) => new Promise((resolve) => stops.push({ id, resolve })), log: pino({ level: 'silent' }) })
    const sourceFile = path.join(dataDir(volumeRoot({ local: sourceData, shared: null }, volume)), 'count')
    await mkdir(path.dirname(sourceFile), { recursive: true })
    await writeFile(sourceFile, 'while running')
    sending.handle({ type: 'command', id: 'final', command: { kind: 'send-volumes', volumes: [volume], to: { address: '127.0.0.1', port }, secret, final: true, afterStopOf: instanceId } })
    await until(() => stops.length === 1)
    expect(stops[0]!.id).toBe(instanceId)
    // The instance's last write lands before its stop: the copy must carry it.
    await writeFile(sourceFile, 'last write')
    expect(answers.has('final')).toBe(false)
    stops[0]!.resolve(true)
    await until(() => answers.has('final'))
    expect(answers.get('final')!.ok).toBe(true)
    expect(await readFile(path.join(dataDir(volumeRoot(dirs, volume)), 'count'), 'utf8')).toBe('last write')

    sending.handle({ type: 'command', id: 'never', command: { kind: 'send-volumes', volumes: [volume], to: { address: '127.0.0.1', port }, secret, final: true, afterStopOf: instanceId } })
    await until(() => stops.length === 2)
    stops[1]!.resolve(false)
    await until(() => answers.has('never'))
    expect(answers.get('never')).toMatchObject({ ok: false, error: 'the instance did not stop here' })
    await Promise.all([runner.close(), sending.close()])
  })
})
