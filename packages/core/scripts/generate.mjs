// Runs `prisma generate` for one schema without Prisma's native schema engine: generate
// never runs the engine, but the CLI downloads it unless PRISMA_SCHEMA_ENGINE_BINARY names a file.
// Runs at `npm install` (root postinstall) and as turbo's `generate` task; quiet unless it fails.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const schema = process.argv[2] ?? 'prisma/schema.prisma'
const res = spawnSync('npx', ['prisma', 'generate', '--schema', schema], {
  cwd: root,
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'pipe'],
  env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
})
if (res.status !== 0) process.stderr.write(`prisma generate --schema ${schema} failed:\n${res.error?.message ?? ''}${res.stdout}${res.stderr}`)
process.exit(res.status ?? 1)
