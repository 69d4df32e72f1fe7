import { lstat, mkdir, mkdtemp, readFile, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createEtcMirror } from './etc'

let src: string
let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'alveary-etc-'))
  src = join(dir, 'host-etc')
  await mkdir(join(src, 'ssl/certs'), { recursive: true })
  await mkdir(join(src, 'ssl/private'))
  await writeFile(join(src, 'passwd'), 'root:x:0:0::/root:/bin/sh\n')
  await writeFile(join(src, 'shadow'), 'root:secret\n')
  await writeFile(join(src, 'ssl/private/key.pem'), 'secret\n')
  await writeFile(join(src, 'ssl/certs/a.pem'), 'A\n')
  await symlink('a.pem', join(src, 'ssl/certs/a.0'))
  await symlink('/usr/share/zoneinfo/Etc/UTC', join(src, 'localtime'))
})
afterEach(() => rm(dir, { recursive: true, force: true }))

describe('the /etc mirror of sandboxes', () => {
  it('holds the listed entries only, as hard links and symlinks, with a resolv.conf to mount over', async () => {
    const root = await createEtcMirror(join(dir, 'm'), src).current()
    expect((await stat(join(root, 'passwd'))).ino).toBe((await stat(join(src, 'passwd'))).ino)
    expect(await readlink(join(root, 'localtime'))).toBe('/usr/share/zoneinfo/Etc/UTC')
    expect(await readlink(join(root, 'ssl/certs/a.0'))).toBe('a.pem')
    expect(await readFile(join(root, 'resolv.conf'), 'utf8')).toBe('')
    for (const hidden of ['shadow', 'ssl/private', 'hosts']) await expect(lstat(join(root, hidden))).rejects.toThrow()
    // The sandbox's uid passes the mirror; the agent's folder around it stays root's.
    expect((await stat(root)).mode & 0o777).toBe(0o755)
    expect((await stat(join(dir, 'm'))).mode & 0o777).toBe(0o700)
  })

  it('follows the node: a replaced file, an added certificate, a removed entry, and drops what left the list', async () => {
    const m = createEtcMirror(join(dir, 'm'), src)
    const root = await m.current()
    await writeFile(join(src, 'passwd.new'), 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n')
    await rename(join(src, 'passwd.new'), join(src, 'passwd'))
    await writeFile(join(src, 'ssl/certs/b.pem'), 'B\n')
    await rm(join(src, 'localtime'))
    expect(await m.current()).toBe(root)
    expect(await readFile(join(root, 'passwd'), 'utf8')).toContain('app:x:1000')
    expect(await readFile(join(root, 'ssl/certs/b.pem'), 'utf8')).toBe('B\n')
    await expect(lstat(join(root, 'localtime'))).rejects.toThrow()
    // A file in place needs nothing: it is the same file.
    await writeFile(join(src, 'ssl/certs/a.pem'), 'A2\n')
    expect(await readFile(join(root, 'ssl/certs/a.pem'), 'utf8')).toBe('A2\n')
    // A mirror left by an earlier agent loses what is not on the list, keeping the folder itself (bound by running sandboxes).
    await writeFile(join(root, 'shadow'), 'stale\n')
    const again = await createEtcMirror(join(dir, 'm'), src).current()
    expect(again).toBe(root)
    await expect(lstat(join(root, 'shadow'))).rejects.toThrow()
    expect(await readFile(join(root, 'passwd'), 'utf8')).toContain('app:x:1000')
  })
})
