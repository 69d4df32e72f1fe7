/**
 * The /etc a sandbox sees: one folder per agent holding what of the node's /etc an app may need
 * (ETC_FILES, never shadow), bound once at /etc. Binding each file on its own was half of bwrap's
 * time (23 mounts per start). Files are hard links (copies when the folder is on another
 * filesystem than /etc), symlinks are recreated, folders mirrored the same way.
 *
 * Kept current, level-triggered: before every start each entry is looked at (lstat; for a folder
 * the folders in it too), and one whose inode, size or mtime changed is rebuilt beside the mirror
 * and swapped in. An edit in place needs nothing (a hard link is the same file); a replaced file
 * (`useradd` renames a new /etc/passwd in) has a new inode; an added or removed certificate or
 * alternative changes its folder's mtime. Not seen: an edit in place of a file inside a mirrored
 * folder when the mirror had to copy (another filesystem).
 */
import { copyFile, link, lstat, mkdir, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { ETC_FILES } from './bwrap'

export interface EtcMirror {
  /** The folder to bind at /etc, current with the node's /etc. */
  current(): Promise<string>
}

/** What identifies an entry's state; null: absent. */
async function signature(path: string): Promise<string | null> {
  const st = await lstat(path).catch(() => null)
  if (!st) return null
  const own = `${st.ino}:${st.size}:${st.mtimeMs}`
  if (!st.isDirectory()) return `${st.isSymbolicLink() ? 'l' : 'f'}:${own}`
  const subs = (await readdir(path, { withFileTypes: true })).filter((e) => e.isDirectory())
  return `d:${own}[${(await Promise.all(subs.map((e) => signature(join(path, e.name))))).join(',')}]`
}

/** `src` rebuilt at `dest` (which does not exist): hard links where possible. */
async function mirror(src: string, dest: string): Promise<void> {
  const st = await lstat(src)
  if (st.isSymbolicLink()) return symlink(await readlink(src), dest)
  if (st.isDirectory()) {
    await mkdir(dest, { mode: st.mode & 0o7777 })
    for (const e of await readdir(src)) await mirror(join(src, e), join(dest, e))
    return
  }
  if (!st.isFile()) return
  await link(src, dest).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EXDEV' && err.code !== 'EPERM') throw err
    await copyFile(src, dest)
  })
}

const KEEP = new Set<string>(ETC_FILES)
const ON_THE_WAY = new Set(ETC_FILES.flatMap((f) => f.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))))

/**
 * Removes from a mirror left by an earlier agent what is no longer on the list. The mirror itself
 * stays: sandboxes still running from before (re-adopted) have it bound.
 */
async function prune(root: string, rel: string): Promise<void> {
  for (const e of await readdir(join(root, rel)).catch(() => [] as string[])) {
    const p = rel ? `${rel}/${e}` : e
    if (ON_THE_WAY.has(p)) await prune(root, p)
    else if (!KEEP.has(p)) await rm(join(root, p), { recursive: true, force: true })
  }
}

/**
 * `dir` holds the mirror (`dir/etc`) and its scratch space (`dir/new`, outside what the sandbox
 * sees). `source` is the node's /etc (tests give another).
 */
export function createEtcMirror(dir: string, source = '/etc'): EtcMirror {
  const root = join(dir, 'etc')
  const scratch = join(dir, 'new')
  /** Entry → the signature it was mirrored at (as of this process: at start, everything is rebuilt). */
  const mirrored = new Map<string, string | null>()
  let syncing: Promise<void> = Promise.resolve()

  async function sync(): Promise<void> {
    const now = await Promise.all(ETC_FILES.map(async (f) => [f, await signature(join(source, f))] as const))
    const changed = now.filter(([f, sig]) => !mirrored.has(f) || mirrored.get(f) !== sig)
    if (!changed.length) return
    // Only root passes the agent's folders; the mirror itself is for everyone (the tenant's uid).
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await mkdir(root, { recursive: true, mode: 0o755 })
    if (!mirrored.size) await prune(root, '')
    await rm(scratch, { recursive: true, force: true })
    await mkdir(scratch, { recursive: true, mode: 0o700 })
    for (const [f, sig] of changed) {
      const dest = join(root, f)
      const next = join(scratch, f.replace(/\//g, '_'))
      const made = sig !== null || f === 'resolv.conf'
      if (sig !== null) await mirror(join(source, f), next)
      // A bind at /etc/resolv.conf (a tenant network's names) needs a file to mount over.
      else if (made) await writeFile(next, '', { mode: 0o644 })
      await mkdir(dirname(dest), { recursive: true, mode: 0o755 })
      // A file is replaced in one rename; a folder cannot be renamed over a folder, so the old one
      // moves aside first (running sandboxes miss it for a moment).
      const old = `${next}.old`
      if ((await lstat(dest).catch(() => null))?.isDirectory()) await rename(dest, old)
      if (made) await rename(next, dest)
      else await rm(dest, { force: true })
      await rm(old, { recursive: true, force: true })
      mirrored.set(f, sig)
    }
  }

  return {
    async current() {
      // One sync at a time; a start during one waits for it and then looks again.
      syncing = syncing.catch(() => {}).then(sync)
      await syncing
      return root
    },
  }
}
