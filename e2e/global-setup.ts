import { BFF_PORT, WEB_PORT } from './env'

async function waitFor(what: string, ok: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs
  let last: unknown = null
  while (Date.now() < deadline) {
    try {
      if (await ok()) return
    } catch (err) {
      last = err
    }
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
}

/** Runs after the webServer answered /healthz: waits for the console and the local node. */
export default async function globalSetup() {
  await waitFor('the console', async () => (await fetch(`http://127.0.0.1:${WEB_PORT}/login`)).ok, 90_000)
  await waitFor(
    'a ready node',
    async () => ((await (await fetch(`http://127.0.0.1:${BFF_PORT}/healthz`)).json()) as { readyNodes: number }).readyNodes > 0,
    60_000,
  )
}
